"""The provisioning page in headless Chromium against the firmware's portal
under micropython: pick a scanned network, type the password, submit, set the
server URL, and check what the device saved -- and that no endpoint ever sends
the password back."""

import json
import os
import shutil
import tempfile

import pytest
from bootkit import device, free_port, output
from bootkit import wait as wait_event

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECRET = "s3cret-pass-123"
OTA = "http://127.0.0.1:9/xiaozhi/ota/"  # loopback, nothing listens: no traffic leaves the host

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):  # a missing tool fails, never skips
    pytest.fail("chromium or chromedriver is missing: run `make setup` (scripts/setup installs the Debian "
                "packages chromium and chromium-driver)", pytrace=False)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="xz-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile, "--window-size=390,844"):  # a phone-sized window
        opts.add_argument(arg)
    # Record every response body the page receives, to prove no endpoint echoes the password.
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(20)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _bodies(drv):
    out = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.loadingFinished":
            try:
                body = drv.execute_cdp_cmd("Network.getResponseBody", {"requestId": msg["params"]["requestId"]})
                out.append(body["body"])
            except Exception:  # noqa: BLE001 - bodies of finished redirects are gone; skip them
                pass
    return out


def test_fill_in_and_submit(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    port = free_port()
    sim = {
        "networks": [{"ssid": "home-5", "password": SECRET, "rssi": -48}, {"ssid": "guest", "rssi": -80}],
        "wifi_join_ms": 800, "clock_speed": 4, "portal_port": port, "dns_port": 0,
    }
    with device(tmp_path, {"schema": 2, "board": "sim"}, sim) as dev:
        wait_event(dev, "portal")
        browser.execute_cdp_cmd("Network.enable", {})
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 15)
        # The scan list fills in; tapping a network fills the name field.
        item = wait.until(ec.element_to_be_clickable((By.XPATH, "//ul[@id='aps']/li[contains(., 'home-5')]")))
        item.click()
        assert browser.find_element(By.ID, "ssid").get_attribute("value") == "home-5"

        # A wrong password first: the page shows the device's reason.
        browser.find_element(By.ID, "password").send_keys("wrong-password")
        browser.find_element(By.ID, "submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "wmsg"), "wrong password"))

        pw = browser.find_element(By.ID, "password")
        pw.clear()
        pw.send_keys(SECRET)
        browser.find_element(By.ID, "submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "wmsg"), "Saved home-5"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "saved"), "home-5"))
        assert browser.find_element(By.ID, "password").get_attribute("value") == ""

        # Server settings: OTA URL, token, protocol version.
        browser.find_element(By.ID, "ota_url").send_keys(OTA)
        browser.find_element(By.ID, "ws_token").send_keys("tok-abc-987")
        Select(browser.find_element(By.ID, "protocol_version")).select_by_visible_text("2")
        browser.find_element(By.ID, "adv_save").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "amsg"), "Saved"))
        # A bad URL is refused with the key named.
        url = browser.find_element(By.ID, "ws_url")
        url.send_keys("http://not-a-ws-url/")
        browser.find_element(By.ID, "adv_save").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "amsg"), "ws_url"))
        url.clear()

        saved = json.loads((tmp_path / "config.json").read_text())
        assert saved["wifi"] == [{"ssid": "home-5", "password": SECRET}]
        assert saved["ota_url"] == OTA and saved["ws_token"] == "tok-abc-987" and saved["protocol_version"] == 2
        assert saved["ws_url"] == ""

        bodies = _bodies(browser)
        assert any("support_5g" in b for b in bodies) and any("ws_token_set" in b for b in bodies)
        for b in bodies:
            assert SECRET not in b and "tok-abc-987" not in b
        assert SECRET not in browser.page_source

        # Done: the device leaves the portal and joins the saved network.
        browser.find_element(By.ID, "exit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "xmsg"), "Leaving setup"))
        wait_event(dev, "wifi", up=True, ssid="home-5")
        assert not any(SECRET in line for line in output(dev))
