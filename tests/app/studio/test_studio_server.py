"""The studio's HTTP API against real services in this process: what a page sends and gets,
per-tab isolation, bounded and safe inputs, the services' errors as plain messages."""

from __future__ import annotations

import io
import json
import socket
import zipfile

import numpy as np
import pytest

COFFEE = {"sample": "coffee"}
LINK = {"modulation": "16qam", "code": "ldpc-1/2", "snr_db": 10.0, "snr_kind": "esn0", "fading": "none"}


@pytest.fixture()
def tab(services, studio_server, client):
    _, base = studio_server(services["sender"])
    return client(base).open_tab()


def test_a_sent_image_shows_what_report_json_says(tab):
    item = tab.send(COFFEE, {**LINK, "snr_db": 8.0}, mode="key+text")
    assert item["status"] == "ok" and item["error"] is None
    report = tab.call("GET", item["files"]["report.json"]).json()
    [rec] = report["images"]
    assert report["command"] == "studio" and report["settings"]["link"] == {**LINK, "snr_db": 8.0}
    assert rec["metrics"]["psnr_db"] == item["metrics"]["psnr_db"]
    assert rec["metrics"]["ssim"] == item["metrics"]["ssim"]
    assert 0.0 < item["metrics"]["ms_ssim"] <= 1.0 and rec["metrics"]["ms_ssim"] == item["metrics"]["ms_ssim"]
    assert rec["caption"] == item["caption"] and item["mode"] == "key+text"
    assert item["payload"]["total"] == rec["payload_bytes"]["total"]
    assert dict(item["payload"]["sections"]) == {
        k: v for k, v in rec["payload_bytes"].items() if k != "total"
    }
    ch = rec["channel"]
    assert item["channel"]["ber"] == ch["bit_errors"] / ch["info_bits"]
    assert item["channel"]["ber_raw"] == ch["bit_errors_raw"] / ch["coded_bits"]
    assert ch["esn0_db"] == 8.0 and ch["snr_kind"] == "esn0"
    # the constellation: the link's sample of received symbols, beside the 16 points
    c = item["constellation"]
    assert len(c["ideal"]) == 16 and len(c["received"]) == min(512, ch["symbols"])
    assert len(ch["symbol_sample"]) == 2 * len(c["received"])
    # the key-region mask the sender used, over the latent grid (image side / 8)
    side = int(np.sqrt(item["payload"]["raw_bytes"] / 3))
    mask = item["key_mask"]
    assert (
        (mask["rows"], mask["cols"]) == (side // 8, side // 8) == (len(mask["cells"]), len(mask["cells"][0]))
    )
    assert 0 < sum(row.count("1") for row in mask["cells"]) < mask["rows"] * mask["cols"]
    assert rec["key_mask"] == mask
    # the timeline adds up to the client's total
    t = item["timeline"]
    assert sum(s["ms"] for s in t["segments"]) == pytest.approx(rec["timings_ms"]["total"])


def test_the_downloads_are_the_item_files(tab):
    from PIL import Image

    item = tab.send(COFFEE, LINK, mode="text+latent")
    assert set(item["files"]) == {
        "report.json",
        "original.png",
        "reconstruction.png",
        "compare.png",
        "item.zip",
    }
    images = {}
    for key in ("original.png", "reconstruction.png", "compare.png"):
        r = tab.call("GET", item["files"][key])
        assert r.status == 200 and r.headers["Content-Type"] == "image/png"
        assert "attachment" in r.headers["Content-Disposition"]
        images[key] = Image.open(io.BytesIO(r.body))
    side = images["reconstruction.png"].size[0]
    assert images["original.png"].size == (side, side) and images["compare.png"].size == (2 * side + 8, side)
    z = zipfile.ZipFile(io.BytesIO(tab.call("GET", item["files"]["item.zip"]).body))
    assert sorted(n.split("/")[-1] for n in z.namelist()) == [
        "compare.png",
        "original.png",
        "reconstruction.png",
        "report.json",
    ]


def test_two_tabs_see_only_their_own_results(services, studio_server, client):
    _, base = studio_server(services["sender"])
    a, b = client(base).open_tab(), client(base).open_tab()
    item = a.send(COFFEE, LINK)
    assert b.call("GET", f"/api/items/{item['item_id']}").status == 404
    assert b.call("GET", item["files"]["report.json"]).status == 404
    job = a.submit(kind="send", source=COFFEE, settings={"link": LINK})
    assert b.call("GET", f"/api/jobs/{job['job_id']}").status == 404
    a.wait(job)
    # without a session nothing is shown; a session from a query string is as good as the header
    assert client(base).call("GET", f"/api/items/{item['item_id']}").status == 404
    url = f"{item['files']['report.json']}?session={a.session}"
    assert client(base).call("GET", url).status == 200


def test_an_upload_is_checked_and_sent(tab, make_png):
    rng = np.random.default_rng(0)
    png = make_png(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    r = tab.call("POST", "/api/upload", data=png, headers={"X-File-Name": "..%2F..%2Fmy%20photo.png"})
    assert r.status == 200, r.body
    up = r.json()
    assert (up["width"], up["height"]) == (60, 40) and up["name"] == "my_photo.png"
    item = tab.send({"upload": up["upload_id"]}, LINK)
    assert item["status"] == "ok" and item["label"] == "my_photo.png"
    assert tab.call("GET", item["files"]["report.json"]).json()["images"][0]["name"] == "my_photo.png"


def test_a_text_file_is_refused_with_a_plain_message(tab):
    r = tab.call("POST", "/api/upload", data=b"just some notes\n" * 10, headers={"X-File-Name": "notes.txt"})
    assert r.status == 400
    err = r.json()["error"]
    assert err["code"] == "INVALID_ARGUMENT"
    assert err["message"].startswith("notes.txt is not an image the sender takes: not a decodable image")


def test_an_over_size_upload_names_the_limit(services, studio_server, client, make_png):
    _, base = studio_server(services["sender"], max_upload_bytes=5000)
    tab = client(base).open_tab()
    big = make_png(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert len(big) > 5000
    r = tab.call("POST", "/api/upload", data=big)
    assert r.status == 413
    assert (
        "over the studio's limit of 0.00476837 MiB (gensc studio --max-upload-mb)"
        in r.json()["error"]["message"]
    )
    # the connection stays usable: the body was read and dropped
    assert tab.call("GET", "/api/options").status == 200


def test_uploads_kept_in_memory_are_bounded_across_tabs(services, studio_server, client, make_png):
    _, base = studio_server(services["sender"], max_upload_bytes=20_000, upload_store_bytes=40_000)
    tabs = [client(base).open_tab() for _ in range(3)]
    pngs = [
        make_png(np.random.default_rng(i).integers(0, 256, (75, 75, 3), dtype=np.uint8)) for i in range(3)
    ]
    assert all(15_000 < len(png) <= 20_000 for png in pngs)  # 3 of them are over the 40 KB kept
    ids = [
        t.call("POST", "/api/upload", data=png).json()["upload_id"] for t, png in zip(tabs, pngs, strict=True)
    ]
    for t, uid, kept in zip(tabs, ids, (False, True, True), strict=True):  # the oldest, in another tab, went
        body = {"kind": "send", "source": {"upload": uid}, "settings": {"link": LINK}}
        r = t.call("POST", "/api/jobs", json_body=body)
        assert (r.status == 200) is kept, r.body
        if kept:
            assert t.wait(r.json())["state"] == "done"
        else:
            assert r.status == 404 and "upload the image again" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/api.py",
        "/api/samples/..%2F..%2F..%2Fetc%2Fpasswd.png",
        "/api/samples/astronaut",
        "/api/samples/brick.png",  # a scikit-image photo, but not one of the samples offered
        "/api/items/..%2Fjobs/files/report.json",
        "/etc/passwd",
        "//etc/passwd",
    ],
)
def test_nothing_a_page_names_becomes_a_path(tab, path):
    r = tab.call("GET", path)
    assert r.status == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert b"root:" not in r.body and b"import" not in r.body


def test_an_item_file_key_outside_the_fixed_set_is_refused(tab):
    item = tab.send(COFFEE, LINK)
    for key in ("..%2Freport.json", "report.json%00.png", "original.PNG", "zip"):
        r = tab.call("GET", f"/api/items/{item['item_id']}/files/{key}")
        assert r.status == 404, key


def test_the_page_and_its_files_come_with_a_strict_policy(tab):
    for path in ("/", "/static/studio.js", "/static/studio.css"):
        r = tab.call("GET", path)
        assert r.status == 200
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    page = tab.call("GET", "/").body.decode()
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    for name in ("studio.js", "studio.css"):
        text = tab.call("GET", f"/static/{name}").body.decode()
        assert "https://" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_a_foreign_host_header_is_refused(tab):
    """DNS rebinding: a page at evil.example whose name now points at 127.0.0.1."""
    r = tab.call("GET", "/api/options", headers={"Host": "evil.example:80"})
    assert r.status == 421


def test_a_job_request_must_be_json(tab):
    r = tab.call("POST", "/api/jobs", data=b'{"kind": "send"}', headers={"Content-Type": "text/plain"})
    assert r.status == 400 and "application/json" in r.json()["error"]["message"]
    r = tab.call("POST", "/api/upload", data=b"x", headers={"X-Studio-Session": ""})
    assert r.status == 400


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"link": {**LINK, "modulation": "1024qam"}}, "modulation='1024qam' unknown; known: bpsk"),
        ({"link": {**LINK, "snr_db": 99}}, "SNR must be in -20..60 dB"),
        ({"link": {**LINK, "seed": 3}}, "unknown link settings ['seed']"),
        ({"mode": "telepathy", "link": LINK}, "unknown mode 'telepathy'; known: auto"),
        ({"quant_bits": 12, "link": LINK}, "latent bits must be a whole number in 1..8"),
        ({"budget_bytes": 300, "bpp": 0.5, "link": LINK}, "give one budget, not budget_bytes and bpp"),
        ({"budget_bytes": 0, "link": LINK}, "budget_bytes must be in 1..4294967295, got 0"),
        ({"budget_bytes": 2**32, "link": LINK}, "budget_bytes must be in 1..4294967295"),
        ({"budget_bytes": 1.5, "link": LINK}, "a byte budget must be a whole number of bytes, got 1.5"),
        ({"budget_bytes": "300", "link": LINK}, "a byte budget must be a whole number of bytes, got '300'"),
        ({"bpp": 0, "link": LINK}, "bpp must be in (0, 64], got 0.0"),
        ({"bpp": 65, "link": LINK}, "bpp must be in (0, 64], got 65.0"),
        ({"bpp": True, "link": LINK}, "a budget in bits per pixel must be a number, got True"),
        (
            {"budget": 300, "link": LINK},
            "unknown settings ['budget']; known: mode, quant_bits, link, budget_",
        ),
    ],
)
def test_bad_settings_are_refused_before_anything_is_sent(tab, settings, words):
    r = tab.call("POST", "/api/jobs", json_body={"kind": "send", "source": COFFEE, "settings": settings})
    assert r.status == 400 and words in r.json()["error"]["message"]


def test_an_unreachable_sender_is_a_plain_message(studio_server, client):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, base = studio_server(f"127.0.0.1:{port}", retries=0)
    tab = client(base).open_tab()
    item = tab.send(COFFEE, LINK)
    assert item["status"] == "error" and item["error"]["code"] == "UNAVAILABLE"
    assert "could not be reached" in item["error"]["lead"] and f"127.0.0.1:{port}" in item["error"]["message"]
    assert item["files"]["report.json"]  # the failed send has its report too
    assert tab.call("GET", item["files"]["report.json"]).json()["images"][0]["error"]["code"] == "UNAVAILABLE"


def test_a_sender_that_wants_a_token_is_a_plain_message(studio_pipelines, studio_server, client, tmp_path):
    from helpers import InProcessStack

    from gensc.common.net.rpc_config import RpcConfig

    (tmp_path / "token").write_text("s3cret-token-for-the-test\n")
    stack = InProcessStack(*studio_pipelines, RpcConfig(token_file=str(tmp_path / "token")))
    try:
        _, base = studio_server(stack["sender"])  # the studio has no token
        item = client(base).open_tab().send(COFFEE, LINK)
    finally:
        stack.stop()
    assert item["error"]["code"] == "UNAUTHENTICATED" and "token" in item["error"]["lead"]
    assert "s3cret" not in json.dumps(item)


def test_a_sweep_fills_in_one_point_per_snr(tab):
    job = tab.submit(
        kind="sweep", source=COFFEE, settings={"mode": "text+latent", "link": LINK}, sweep="0:12:6"
    )
    assert job["sweep"] == {"snr_db": [0.0, 6.0, 12.0]} and job["total"] == 3
    job = tab.wait(job)
    assert job["state"] == "done" and [p["snr_db"] for p in job["points"]] == [0.0, 6.0, 12.0]
    for p in job["points"]:  # each point is an item of its own, at its SNR
        item = tab.call("GET", f"/api/items/{p['item_id']}").json()
        assert item["settings"]["link"]["snr_db"] == p["snr_db"] and item["channel"]["esn0_db"] == p["snr_db"]
        assert p["psnr_db"] == (item["metrics"] or {}).get("psnr_db")
    # more noise never gives fewer raw bit errors here (same noise draw, scaled)
    raw = [p["ber_raw"] for p in job["points"]]
    assert raw[0] > raw[1] > raw[2]
    saved = json.loads(tab.call("GET", f"/api/jobs/{job['job_id']}/files/sweep.json").body)
    assert saved["points"] == job["points"] and saved["settings"]["mode"] == "text+latent"


def test_a_sweep_is_bounded(tab):
    r = tab.call(
        "POST", "/api/jobs", json_body={"kind": "sweep", "source": COFFEE, "settings": {}, "sweep": "0:40:1"}
    )
    assert r.status == 400 and "at most 16 SNR points, got 41" in r.json()["error"]["message"]


def test_the_slider_replaces_a_send_still_waiting(services, studio_server, client):
    _, base = studio_server(services["sender"], workers=1)
    tab = client(base).open_tab()
    sweep = tab.submit(
        kind="sweep", source=COFFEE, settings={"link": LINK}, sweep="0:10:5"
    )  # holds the worker
    first = tab.submit(kind="send", source=COFFEE, settings={"link": LINK}, replace=True)
    second = tab.submit(kind="send", source=COFFEE, settings={"link": {**LINK, "snr_db": 12.0}}, replace=True)
    assert tab.wait(first)["state"] == "superseded"
    assert tab.wait(second)["state"] == "done" and tab.wait(sweep)["state"] == "done"


def test_a_tab_has_a_bounded_number_of_jobs(services, studio_server, client):
    _, base = studio_server(services["sender"], workers=1, max_jobs=2)
    tab = client(base).open_tab()
    jobs = [tab.submit(kind="send", source=COFFEE, settings={"link": LINK}) for _ in range(2)]
    r = tab.call(
        "POST", "/api/jobs", json_body={"kind": "send", "source": COFFEE, "settings": {"link": LINK}}
    )
    assert r.status == 429 and "at most 2" in r.json()["error"]["message"]
    for job in jobs:
        tab.wait(job)


def test_jobs_wait_for_local_services_that_are_starting(studio_server, client):
    server, base = studio_server(None)
    tab = client(base).open_tab()
    assert tab.call("GET", "/api/options").json()["status"]["state"] == "starting"
    r = tab.call("POST", "/api/jobs", json_body={"kind": "send", "source": COFFEE, "settings": {}})
    assert r.status == 429 and "still starting" in r.json()["error"]["message"]
    server.studio.failed("receiver exited: weights missing")
    r = tab.call("POST", "/api/jobs", json_body={"kind": "send", "source": COFFEE, "settings": {}})
    assert "did not start: receiver exited: weights missing" in r.json()["error"]["message"]


def _sent(tab, settings: dict) -> tuple[dict, dict]:
    """(item view, report.json) of one send; the job always ends ``done``, never stuck."""
    job = tab.wait(tab.submit(kind="send", source=COFFEE, settings=settings))
    assert job["state"] == "done", job
    item = tab.call("GET", f"/api/items/{job['items'][0]}").json()
    return item, tab.call("GET", item["files"]["report.json"]).json()


@pytest.mark.parametrize(
    "budget, asked, limit",
    [({"budget_bytes": 300}, "300 B", 300), ({"bpp": 0.6}, "0.6 bit/pixel", 307)],  # floor(0.6 * 64^2 / 8)
)
def test_a_byte_budget_travels_and_the_page_shows_what_the_sender_chose(tab, budget, asked, limit):
    item, report = _sent(tab, {"mode": "text+latent", "link": LINK, **budget})
    assert item["status"] == "ok", item["error"]
    [rec] = report["images"]
    key, value = next(iter(budget.items()))
    assert report["settings"][key] == value and report["options"][key] == value  # the client's field
    chose = rec["budget"]  # the Result's budget report, as report.json holds it
    assert chose["budget_bytes"] == limit and chose["packet_bytes"] == rec["payload_bytes"]["total"] <= limit
    b = item["budget"]
    assert b["asked"] == asked and b["met"] is True
    assert (b["limit_bytes"], b["cost_bytes"]) == (limit, chose["packet_bytes"])
    assert b["share"] == chose["packet_bytes"] / limit
    assert dict(b["chosen"])["latent bits"] == chose["bits"] and 1 <= chose["bits"] <= 8
    assert item["payload"]["total"] == b["cost_bytes"]  # beside the bytes per section


def test_an_impossible_budget_is_the_items_error_not_a_stuck_job(tab):
    item, report = _sent(tab, {"mode": "latent", "link": LINK, "budget_bytes": 40})
    assert item["status"] == "error" and item["error"]["code"] == "INVALID_ARGUMENT"
    assert "the budget of 40 bytes is too small for a 'latent' packet" in item["error"]["message"]
    assert "the least it can send costs" in item["error"]["message"]
    assert item["budget"] == {"asked": "40 B", "met": False, "chosen": []}
    assert report["images"][0]["error"]["message"] == item["error"]["message"]
    # without a budget nothing budget-related is shown
    plain, _ = _sent(tab, {"mode": "latent", "link": LINK})
    assert plain["status"] == "ok" and plain["budget"] is None


def test_a_sweep_with_a_budget_keeps_it_at_every_point(tab):
    job = tab.wait(
        tab.submit(
            kind="sweep",
            source=COFFEE,
            settings={"mode": "text+latent", "link": LINK, "budget_bytes": 300},
            sweep="6:12:6",
        )
    )
    assert job["state"] == "done" and len(job["points"]) == 2
    for p in job["points"]:
        assert p["budget"]["limit_bytes"] == 300 and p["budget"]["cost_bytes"] == p["payload_bytes"] <= 300
