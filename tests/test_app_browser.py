"""`stablestyle app` in a real browser: Debian's headless Chromium driven by Selenium against the app on
loopback — upload the test clip, choose scream, run, download the video and check it; then a text file
renamed ``.mp4`` and its message.  Chromium is installed with apt where missing; without it (or Selenium)
the test is skipped and says why.  ``STABLESTYLE_APP_SCREENSHOT=path.png`` keeps the finished page's
screenshot (docs/app.png is one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import av
import pytest

from stablestyle.app.handlers import Api
from stablestyle.app.limits import Limits
from stablestyle.app.server import make_server

pytestmark = pytest.mark.usefixtures("one_thread")
HANG_GUARD = 240  # seconds; a guard against a hung browser, not a speed requirement


def _browser() -> tuple[str, str] | str:
    """``(chromium, chromedriver)`` paths, installing them with apt where possible; else why not."""
    def found():
        return shutil.which("chromium"), shutil.which("chromedriver")

    if None in found() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
    chromium, driver = found()
    if chromium and driver:
        return chromium, driver
    return ("chromium and chromium-driver are not installed and could not be installed with apt-get "
            "(apt-get install -y chromium chromium-driver, as root)")


@pytest.fixture(scope="module")
def app_url():
    api = Api(Limits(max_upload_mb=20, max_seconds=20, max_size=160, workers=1), ttl=3600)
    server = make_server(api, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", api
    server.shutdown()
    server.server_close()
    api.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    paths = _browser()
    if isinstance(paths, str):
        pytest.skip(paths)
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):  # a test-pattern webcam
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, HANG_GUARD, poll_frequency=0.2).until(condition, message=f"waiting for {what}")


def _run(driver, clip: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "file-input").send_keys(str(clip))
    driver.find_element(By.ID, "run").click()


def test_stylize_in_the_browser_then_a_bad_file(browser, app_url, bbb_clip, tmp_path):
    from selenium.webdriver.common.by import By

    url, api = app_url
    browser.get(url)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-style=scream]"), "the style gallery")
    assert "clips up to 20 s" in browser.find_element(By.ID, "limits").text
    browser.find_element(By.CSS_SELECTOR, "[data-style=scream]").click()
    _run(browser, bbb_clip)
    _wait(browser, lambda d: d.find_element(By.ID, "result").is_displayed()
          or d.find_element(By.ID, "error").is_displayed(), "the result")
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    table = browser.find_element(By.ID, "instability").text
    assert "scream-perframe" in table and "stable / per-frame" in table, table
    for label in ("input", "per-frame", "stable"):
        assert float(browser.find_element(By.CSS_SELECTOR, f"td[data-label={label}]").text) > 0
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot polyline")) == 2
    time.sleep(1.0)  # let the video show a frame before the picture is taken
    browser.save_screenshot(str(tmp_path / "app.png"))
    if os.environ.get("STABLESTYLE_APP_SCREENSHOT"):
        shutil.copyfile(tmp_path / "app.png", os.environ["STABLESTYLE_APP_SCREENSHOT"])

    browser.find_element(By.ID, "download-video").click()
    video = browser.downloads / "stylized.mp4"
    _wait(browser, lambda d: video.exists() and not list(browser.downloads.glob("*.crdownload")), "the download")
    with av.open(str(video)) as c, av.open(str(bbb_clip)) as src:
        assert c.streams.video[0].codec_context.name == "h264"
        assert len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == sum(1 for _ in src.decode(video=0)) == 8

    notes = tmp_path / "notes.mp4"
    notes.write_text("this is a text file, not a video\n")
    _run(browser, notes)
    error = _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed()
                  and d.find_element(By.ID, "error"), "the error message")
    assert "notes.mp4: cannot be read as a video" in error.text
    assert "Traceback" not in browser.page_source
    assert list(api.sessions.root.iterdir())  # the page's results wait for their downloads ...
    browser.get("about:blank")
    _wait(browser, lambda d: not list(api.sessions.root.iterdir()), "the closed page's files to go")  # ... until it closes


def test_webcam_tab_records_and_stylizes(browser, app_url):
    from selenium.webdriver.common.by import By

    browser.get(app_url[0])
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-style=udnie]"), "the style gallery")
    browser.find_element(By.CSS_SELECTOR, "[data-style=udnie]").click()
    browser.find_element(By.ID, "webcam-tab-button").click()
    _wait(browser, lambda d: d.execute_script("return !!document.getElementById('webcam-preview').srcObject"),
          "the camera")
    browser.find_element(By.ID, "webcam-record").click()
    _wait(browser, lambda d: "press Stylize" in d.find_element(By.ID, "webcam-state").text, "the recording")
    browser.find_element(By.ID, "run").click()
    _wait(browser, lambda d: d.find_element(By.ID, "result").is_displayed()
          or d.find_element(By.ID, "error").is_displayed(), "the result")
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    assert "webcam.webm" in browser.find_element(By.ID, "result-title").text
    assert float(browser.find_element(By.CSS_SELECTOR, "td[data-label=stable]").text) > 0
