"""Wrong configuration makes a service exit with a clear message, never start half-configured."""

from gensc.app.cli import main


def test_channel_serve_rejects_unknown_modulation(capsys):
    assert main(["channel", "serve", "--receiver", "127.0.0.1:1", "--modulation", "99qam"]) == 2
    assert "99qam" in capsys.readouterr().err


def test_channel_serve_needs_a_receiver(capsys, monkeypatch):
    monkeypatch.delenv("GENSC_RECEIVER_ADDR", raising=False)
    assert main(["channel", "serve"]) == 2
    assert "--receiver" in capsys.readouterr().err


def test_sender_serve_rejects_bad_codec_settings(tiny_cache, capsys):
    argv = ["sender", "serve", "--channel", "127.0.0.1:1", "--profile", "tiny", "--device", "cpu"]
    assert main([*argv, "--key-fraction", "1.5"]) == 2
    assert "key_fraction" in capsys.readouterr().err
    assert main([*argv, "--policy", "/nonexistent/policy.json"]) == 2
    assert "policy.json" in capsys.readouterr().err


def test_sender_serve_missing_weights_names_the_model(capsys, tmp_path):
    argv = [
        "sender",
        "serve",
        "--channel",
        "127.0.0.1:1",
        "--profile",
        "sd15",
        "--sd-model",
        str(tmp_path / "no-sd"),
        "--caption-model",
        str(tmp_path / "no-blip"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no-blip" in err or "no-sd" in err
    assert "--caption-model" in err or "--sd-model" in err
