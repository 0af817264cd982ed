"""The studio page in a real headless browser: Debian's Chromium driven by Selenium through
Debian's chromedriver (no downloaded browser builds), against real services in this process.

The page is loaded, a photo sent, the numbers it shows checked against the item's report.json,
the SNR slider moved and a new result seen, a text file and an over-size file uploaded and the
errors read, a sweep drawn, and two tabs kept apart. With GENSC_STUDIO_SCREENSHOTS=DIR the run
saves its screenshots there (docs/studio/ holds the ones the docs show).

Skipped, saying why, only where no browser is installed (``make test`` installs one with apt-get
where it can: see the Makefile's ``browser`` target).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("GENSC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GENSC_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1500",
)
WAIT_S = 120  # every wait below is bounded by this (a tiny send takes about a second)
SHOTS = os.environ.get("GENSC_STUDIO_SCREENSHOTS")
# A budget in bits per pixel that binds (the sender must turn something) on the profile tested:
# 307 B at tiny's 64 px, 1,228 B at mini's 256 px.
BUDGET_BPP = {"tiny": 0.6}.get(os.environ.get("GENSC_STUDIO_TEST_PROFILE", "tiny"), 0.15)

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return (
                f"no browser: {path} is missing (apt-get install chromium chromium-driver, which "
                f"`make browser` runs; set GENSC_CHROMIUM / GENSC_CHROMEDRIVER for other paths; {package})"
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no browser driver: selenium is not installed (pip install -e .[dev])"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def no_script_errors(request):
    """After each test: the page's JavaScript raised nothing (refused requests are expected)."""
    yield
    if "browser" not in request.fixturenames:
        return
    logs = request.getfixturevalue("browser").get_log("browser")
    broken = [e["message"] for e in logs if "Uncaught" in e["message"] or "Error:" in e["message"]]
    assert not broken, broken


@pytest.fixture(scope="module")
def studio(services, tmp_path_factory):
    """The studio's HTTP server in front of the module's services (uploads up to 512 KiB)."""
    from gensc.app.studio.jobs import Studio
    from gensc.app.studio.server import make_server, serve_in_thread
    from gensc.app.studio.settings import StudioConfig

    config = StudioConfig(max_upload_bytes=512 * 1024)
    server = make_server(Studio(config, tmp_path_factory.mktemp("studio"), services["sender"]))
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    server.studio.close()


def wait_for(driver, predicate, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(lambda d: predicate(d))
    except TimeoutException:
        progress = text(driver, "progress")
        error = text(driver, "error")
        raise AssertionError(
            f"waited {WAIT_S} s for {what}; progress {progress!r}, error {error!r}"
        ) from None


def text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    els = driver.find_elements(By.ID, element_id)
    return els[0].text if els else ""


def shot(driver, name: str) -> None:
    """The whole page as PNG into GENSC_STUDIO_SCREENSHOTS (when set), through Chromium's DevTools."""
    if not SHOTS:
        return
    import base64

    w, h = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    clip = {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    (Path(SHOTS) / name).write_bytes(base64.b64decode(png["data"]))


def open_page(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(
        driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples button")) == 4, "the sample photos"
    )
    ready = "the services to be ready"
    wait_for(driver, lambda d: text(d, "services").startswith("sender 127.0.0.1:"), ready)


def strip_items(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [b.get_attribute("data-item") for b in driver.find_elements(By.CSS_SELECTOR, "#strip button")]


def shown_report(driver) -> dict:
    """The report.json behind the item on show, fetched from its download link."""
    from selenium.webdriver.common.by import By

    href = driver.find_element(By.CSS_SELECTOR, '#downloads a[data-file="report.json"]').get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as r:
        return json.loads(r.read())


def js_exp(x: float) -> str:
    """JavaScript's ``x.toExponential(2)``: Python's ``.2e`` without the exponent's leading zero."""
    mantissa, exp = f"{x:.2e}".split("e")
    return f"{mantissa}e{exp[0]}{int(exp[1:])}"


def check_numbers(driver) -> dict:
    """Every number the page shows against the item's report.json; returns the record."""
    [rec] = shown_report(driver)["images"]
    m, ch, payload = rec["metrics"], rec["channel"], rec["payload_bytes"]
    assert text(driver, "m-psnr") == f"{m['psnr_db']:.2f} dB"
    assert text(driver, "m-ssim") == f"{m['ssim']:.4f}"
    assert text(driver, "m-msssim") == f"{m['ms_ssim']:.4f}"
    assert text(driver, "m-status") == rec["status"] == "ok"
    assert text(driver, "sent-caption") == rec["caption"]
    assert text(driver, "payload-total") == str(payload["total"])
    ber_raw = ch["bit_errors_raw"] / ch["coded_bits"]
    assert (
        text(driver, "ch-ber-raw")
        == f"{js_exp(ber_raw)} ({ch['bit_errors_raw']} of {ch['coded_bits']} coded bits)"
    )
    ber = ch["bit_errors"] / ch["info_bits"]
    assert text(driver, "ch-ber") == f"{js_exp(ber)} ({ch['bit_errors']} of {ch['info_bits']} bits)"
    assert text(driver, "ch-snr").startswith(f"{ch['esn0_db']:.2f} dB · {ch['ebn0_db']:.2f} dB")
    assert text(driver, "ch-header") == "arrived intact"
    assert text(driver, "ch-symbols") == str(ch["symbols"])
    assert text(driver, "ch-airtime") == f"{1e3 * ch['airtime_s']:.3f} ms"
    n = len(ch["symbol_sample"]) // 2
    assert text(driver, "constellation-note").startswith(f"{ch['modulation']}: {n} received symbols")
    return rec


def test_send_a_photo_see_the_numbers_move_the_snr(browser, studio):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    t0 = time.perf_counter()
    open_page(browser, studio)
    browser.find_element(By.CSS_SELECTOR, '#samples button[data-sample="coffee"]').click()
    Select(browser.find_element(By.ID, "mode")).select_by_value("key+text")
    browser.find_element(By.ID, "send").click()
    wait_for(browser, lambda d: len(strip_items(d)) == 1 and text(d, "m-psnr"), "the reconstruction")
    img = browser.find_element(By.ID, "img-recon")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", img) > 0, "its image")
    rec = check_numbers(browser)
    cells = sum(row.count("1") for row in rec["key_mask"]["cells"])
    assert text(browser, "mask-note").startswith(
        f"key regions: {cells} of {rec['key_mask']['rows'] ** 2} latent cells"
    )
    assert text(browser, "sent-text-kind") == "structured prompt"
    first_psnr = text(browser, "m-psnr")
    shot(browser, "studio-send.png")

    # the slider: 6 steps of 0.5 dB down resend the same photo at 7 dB
    slider = browser.find_element(By.ID, "snr")
    slider.send_keys(*[Keys.ARROW_LEFT] * 6)
    assert text(browser, "snr-value") == "7.0"
    wait_for(browser, lambda d: text(d, "ch-snr").startswith("7.00 dB"), "the result at 7 dB")
    wait_for(browser, lambda d: text(d, "progress").startswith("done in"), "the last send to finish")
    rec = check_numbers(browser)
    assert rec["channel"]["esn0_db"] == 7.0 and rec["name"] == "coffee.png"
    strip = strip_items(browser)
    assert 2 <= len(strip) <= 8 and strip[0] == rec["item_id"]  # newest first; older ones kept
    labels = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#strip button")]
    assert "coffee · 7 dB" in labels[0] and "coffee · 10 dB" in labels[-1]
    assert labels[-1].endswith(first_psnr)
    shot(browser, "studio-slider.png")
    print(f"browser: send + slider in {time.perf_counter() - t0:.1f} s")


def test_a_text_file_and_an_over_size_file_get_plain_errors(browser, studio, tmp_path, make_png):
    from selenium.webdriver.common.by import By

    open_page(browser, studio)
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not pixels\n" * 20)
    browser.find_element(By.ID, "upload").send_keys(str(notes))
    wait_for(browser, lambda d: d.find_element(By.ID, "error").is_displayed(), "the upload error")
    error = text(browser, "error")
    assert error.startswith("The upload was refused.")
    assert "notes.txt is not an image the sender takes: not a decodable image" in error
    assert text(browser, "source") == "no photo chosen"
    shot(browser, "studio-bad-upload.png")

    big = tmp_path / "big.png"
    big.write_bytes(make_png(np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)))
    browser.find_element(By.ID, "upload").send_keys(str(big))
    wait_for(browser, lambda d: "too large" in text(d, "error"), "the size error")
    assert f"big.png is {big.stat().st_size / 2**20:.1f} MiB, over the studio's limit of 0.5 MiB" in text(
        browser, "error"
    )

    # a good upload goes through and is sent
    small = tmp_path / "small photo.png"
    small.write_bytes(make_png(np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)))
    browser.find_element(By.ID, "upload").send_keys(str(small))
    wait_for(browser, lambda d: text(d, "source").startswith("upload: small_photo.png (80×48)"), "the upload")
    assert not browser.find_element(By.ID, "error").is_displayed()
    browser.find_element(By.ID, "send").click()
    wait_for(
        browser, lambda d: len(strip_items(d)) == 1 and text(d, "m-status") == "ok", "the upload's result"
    )
    assert shown_report(browser)["images"][0]["name"] == "small_photo.png"


def test_a_sweep_fills_its_plot(browser, studio):
    from selenium.webdriver.common.by import By

    open_page(browser, studio)
    browser.find_element(By.CSS_SELECTOR, '#samples button[data-sample="astronaut"]').click()
    box = browser.find_element(By.ID, "sweep-range")
    box.clear()
    box.send_keys("0:12:4")
    browser.find_element(By.ID, "sweep").click()
    seen = set()

    def finished(d) -> bool:
        # points and status read in one script, so both are of the same moment of the page
        points, status = d.execute_script(
            "return [document.querySelectorAll('#sweep-plot circle.sweep-point').length,"
            " document.getElementById('sweep-status').textContent]"
        )
        seen.add(points)
        return status.startswith("done: 4 of 4")

    wait_for(browser, finished, "the sweep")
    points = browser.find_elements(By.CSS_SELECTOR, "#sweep-plot circle.sweep-point")
    assert len(points) == 8  # 4 SNRs x (PSNR, BER)
    assert max(seen) == 8 and min(seen) < 8  # it filled in while the sweep ran
    href = browser.find_element(By.CSS_SELECTOR, "#sweep-download a").get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as r:
        sweep = json.loads(r.read())
    assert [p["snr_db"] for p in sweep["points"]] == [0.0, 4.0, 8.0, 12.0]
    # every point joined the strip of past results, newest first
    joined = [p["item_id"] for p in reversed(sweep["points"])]
    wait_for(browser, lambda d: strip_items(d) == joined, "the sweep's points in the strip")
    labels = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#strip button")]
    assert [label.split("\n")[0] for label in labels] == [f"astronaut · {x} dB" for x in (12, 8, 4, 0)]
    shot(browser, "studio-sweep.png")
    points[-1].click()  # a point opens its item
    wait_for(browser, lambda d: text(d, "ch-snr").startswith("12.00 dB"), "the 12 dB point's item")


def test_a_byte_budget_shows_what_the_sender_chose_and_an_impossible_one_its_error(browser, studio):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from gensc.app.studio.views import BUDGET_CHOICES

    open_page(browser, studio)
    browser.find_element(By.CSS_SELECTOR, '#samples button[data-sample="coffee"]').click()
    Select(browser.find_element(By.ID, "mode")).select_by_value("text+latent")
    unit = Select(browser.find_element(By.ID, "budget-unit"))
    assert unit.first_selected_option.text == "bytes"
    unit.select_by_value("bpp")
    budget = browser.find_element(By.ID, "budget")
    budget.send_keys(str(BUDGET_BPP))
    browser.find_element(By.ID, "send").click()
    wait_for(browser, lambda d: len(strip_items(d)) == 1 and text(d, "m-psnr"), "the budgeted result")
    rec = check_numbers(browser)
    chose = rec["budget"]  # the Result's budget report, as report.json holds it
    pixels = int(text(browser, "payload-raw")) // 3
    limit = int(BUDGET_BPP * pixels / 8)  # floor(bpp * S^2 / 8)
    assert chose["budget_bytes"] == limit and chose["packet_bytes"] == rec["payload_bytes"]["total"] <= limit
    assert text(browser, "budget-asked") == f"{BUDGET_BPP} bit/pixel"
    cost = chose["packet_bytes"]
    assert text(browser, "budget-cost") == f"cost {cost} of {limit} B ({100 * cost / limit:.1f} %)"
    rows = browser.find_elements(By.CSS_SELECTOR, "#budget-chosen tr")
    shown = [(r.find_element(By.TAG_NAME, "th").text, r.find_element(By.TAG_NAME, "td").text) for r in rows]
    assert shown == [(label, str(chose[key])) for key, label in BUDGET_CHOICES if key in chose] != []
    shot(browser, "studio-budget.png")

    # a budget no latent packet meets: the sender's error text on the page, no spinner left
    Select(browser.find_element(By.ID, "mode")).select_by_value("latent")
    unit.select_by_value("budget_bytes")
    budget.clear()
    budget.send_keys("40")
    browser.find_element(By.ID, "send").click()
    wait_for(browser, lambda d: "INVALID_ARGUMENT" in text(d, "error"), "the budget's error")
    error = text(browser, "error")
    assert "the budget of 40 bytes is too small for a 'latent' packet of this image" in error
    assert "the least it can send costs" in error
    wait_for(browser, lambda d: text(d, "progress").startswith("no image (INVALID_ARGUMENT) in"), "the end")
    assert text(browser, "budget-cost") == "not met: the sender sent nothing (see the error)"
    assert text(browser, "m-status") == "error" and len(strip_items(browser)) == 2

    # text that is not a number is refused on the page, never sent as "no budget"
    budget.clear()
    budget.send_keys("lots")
    browser.find_element(By.ID, "send").click()
    wait_for(browser, lambda d: "must be a number" in text(d, "error"), "the page's refusal")
    assert 'the budget must be a number of bytes (or empty for none), got "lots"' in text(browser, "error")
    assert len(strip_items(browser)) == 2


def test_two_tabs_each_get_their_own_results(browser, studio):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, studio)
    first = browser.current_window_handle
    browser.find_element(By.CSS_SELECTOR, '#samples button[data-sample="rocket"]').click()
    browser.find_element(By.ID, "send").click()
    wait_for(browser, lambda d: len(strip_items(d)) == 1 and text(d, "m-psnr"), "tab 1's result")
    [item_a] = strip_items(browser)

    browser.switch_to.new_window("tab")
    try:
        open_page(browser, studio)
        assert strip_items(browser) == [] and not browser.find_element(By.ID, "result").is_displayed()
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "api('/api/items/' + arguments[0]).then(() => done('shown'), (e) => done(e.code));",
            item_a,
        )
        assert status == "NOT_FOUND"  # tab 2's session cannot read tab 1's item
        browser.find_element(By.CSS_SELECTOR, '#samples button[data-sample="chelsea"]').click()
        Select(browser.find_element(By.ID, "mode")).select_by_value("auto")
        assert not browser.find_element(By.ID, "modulation").is_enabled()  # the policy picks the link
        browser.find_element(By.ID, "send").click()
        wait_for(browser, lambda d: len(strip_items(d)) == 1 and text(d, "m-psnr"), "tab 2's result")
        assert strip_items(browser) != [item_a]
        report = shown_report(browser)
        assert report["settings"]["mode"] == "auto" and "modulation" not in report["settings"]["link"]
        assert any(n.startswith("auto:") for n in report["images"][0]["notes"])
    finally:
        browser.close()
        browser.switch_to.window(first)
    assert strip_items(browser) == [item_a]


def test_an_unreachable_sender_is_shown_as_a_message(browser, studio_server):
    import socket

    from selenium.webdriver.common.by import By

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, base = studio_server(f"127.0.0.1:{port}", retries=0)
    open_page(browser, base + "/")
    browser.find_element(By.CSS_SELECTOR, '#samples button[data-sample="coffee"]').click()
    browser.find_element(By.ID, "send").click()
    wait_for(browser, lambda d: "UNAVAILABLE" in text(d, "error"), "the error")
    assert "could not be reached" in text(browser, "error") and f"127.0.0.1:{port}" in text(browser, "error")
    assert text(browser, "m-status") == "error"
    assert text(browser, "progress").startswith("no image (UNAVAILABLE)")
    assert not browser.find_element(By.ID, "img-recon").is_displayed()
    shot(browser, "studio-unreachable.png")


def test_no_browser_is_a_stated_reason(monkeypatch):
    """Where no browser can be installed the tests skip saying what is missing, never silently."""
    monkeypatch.setitem(globals(), "CHROMIUM", "/nonexistent/chromium")
    why = _missing()
    assert why and "/nonexistent/chromium is missing (apt-get install chromium chromium-driver" in why
