"""The provisioning page in headless Chromium at a phone's size (390x844)
against the firmware's portal under micropython, in Chinese (the default) and
English: pick a scanned network by its signal bars, show the password, submit,
set the server URL in the folded advanced part, delete a saved network after
confirming, and check what the device saved -- and that no endpoint ever sends
the password back. Each language gets a screenshot (portal-zh.png,
portal-en.png in the test's tmp dir) for a person to look at."""

import json
import os
import shutil
import tempfile

import pytest
from bootkit import device, free_port, output
from bootkit import wait as wait_event

from tools.gateway.config import Config as GatewayConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECRET = "s3cret-pass-123"
OTA = "http://127.0.0.1:9/xiaozhi/ota/"  # loopback, nothing listens: no traffic leaves the host
NETWORKS = [{"ssid": "home-5", "password": SECRET, "rssi": -48}, {"ssid": "guest", "rssi": -80}]
PHONE = (390, 844)

ZH = {"title": "\u5c0f\u667a\u8bbe\u7f6e", "savedas": "\u5df2\u4fdd\u5b58 home-5", "saved": "\u5df2\u4fdd\u5b58",
      "leaving": "\u6b63\u5728\u9000\u51fa\u8bbe\u7f6e", "adv": "\u9ad8\u7ea7\u8bbe\u7f6e",
      "showpw": "\u663e\u793a\u5bc6\u7801", "delq": "\u5220\u9664\u201cold-net\u201d\uff1f",
      "del": "\u5220\u9664", "cancel": "\u53d6\u6d88", "switch": "English"}
EN = {"title": "Xiaozhi setup", "savedas": "Saved home-5", "saved": "Saved", "leaving": "Leaving setup",
      "adv": "Advanced", "showpw": "Show password", "delq": 'Delete "old-net"?', "del": "Delete",
      "cancel": "Cancel", "switch": "\u4e2d\u6587"}


@pytest.fixture
def browser():
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(tool):
            pytest.fail("%s is missing: run `make setup` (scripts/setup installs the Debian packages chromium "
                        "and chromium-driver)" % tool)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="xz-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile, "--window-size=500,900", "--lang=en-US"):
        opts.add_argument(arg)
    # Record every response body the page receives, to prove no endpoint echoes the password.
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(20)
    # Headless windows are at least 500 px wide: emulate the phone's screen instead.
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": PHONE[0], "height": PHONE[1],
                                                              "deviceScaleFactor": 2, "mobile": True})
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


def _screenshot(browser, path):
    """The whole page, not just the first screen of it."""
    import base64

    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def _open(browser, tmp_path, config, button_held=False):
    port = free_port()
    sim = {"networks": NETWORKS, "wifi_join_ms": 800, "clock_speed": 4, "portal_port": port, "dns_port": 0,
           "button_held": button_held}
    dev = device(tmp_path, dict({"schema": 3, "board": "sim"}, **config), sim)
    return dev, "http://127.0.0.1:%d/" % port


def _ui(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 15)
    return By, ec, wait


def _check_page(browser, tmp_path, texts, name):
    """What both languages must show: texts, phone fit, signal bars, the
    password toggle and the folded advanced part. Saves a screenshot."""
    By, ec, wait = _ui(browser)
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), texts["title"]))
    assert browser.execute_script("return [innerWidth, document.documentElement.scrollWidth]") == [PHONE[0]] * 2
    assert browser.find_element(By.ID, "lang").text == texts["switch"]

    # Signal as bars, strongest first: -48 dBm is 4 of 4, -80 dBm is 1 of 4; no raw dBm anywhere.
    wait.until(ec.presence_of_element_located((By.XPATH, "//ul[@id='aps']/li[contains(., 'guest')]")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#aps li")
    lit = [(r.find_element(By.TAG_NAME, "span").text, r.find_element(By.CLASS_NAME, "bars")
            .get_attribute("data-level"), len(r.find_elements(By.CSS_SELECTOR, ".bars i.on")),
            len(r.find_elements(By.CSS_SELECTOR, "svg.lock"))) for r in rows]
    assert lit == [("home-5", "4", 4, 1), ("guest", "1", 1, 0)]  # and a lock on the one with a password
    assert "dBm" not in browser.find_element(By.ID, "aps").text

    # Show password flips the field between hidden and readable.
    pw = browser.find_element(By.ID, "password")
    toggle = browser.find_element(By.ID, "showpw")
    assert pw.get_attribute("type") == "password"
    assert texts["showpw"] in toggle.find_element(By.XPATH, "..").text
    toggle.click()
    assert pw.get_attribute("type") == "text"
    toggle.click()
    assert pw.get_attribute("type") == "password"

    # Advanced settings are folded away until opened; the formats include adpcm.
    fmt = browser.find_element(By.ID, "audio_format")
    assert not fmt.is_displayed() and not browser.find_element(By.ID, "protocol_version").is_displayed()
    summary = browser.find_element(By.CSS_SELECTOR, "#advanced summary")
    assert summary.text == texts["adv"]
    _screenshot(browser, tmp_path / ("portal-%s.png" % name))  # folded: as a person first sees it
    summary.click()
    assert fmt.is_displayed()
    assert [o.text for o in fmt.find_elements(By.TAG_NAME, "option")] == ["pcm", "adpcm"]

    # Every example URL is the gateway's, on its default port, never the stock server's 8000/8003.
    gw = GatewayConfig().listen_port
    holders = [browser.find_element(By.ID, i).get_attribute("placeholder") for i in ("ota_url", "ws_url")]
    assert holders == ["http://<gateway-host>:%d/xiaozhi/ota/" % gw, "ws://<gateway-host>:%d/xiaozhi/v1/" % gw]
    assert ":8000" not in browser.page_source and ":8003" not in browser.page_source


def test_chinese_by_default_fill_in_and_submit(tmp_path, browser):
    from selenium.webdriver.support.ui import Select

    By, ec, wait = _ui(browser)
    dev_ctx, url = _open(browser, tmp_path, {})
    with dev_ctx as dev:
        wait_event(dev, "portal")
        browser.execute_cdp_cmd("Network.enable", {})
        browser.get(url)
        _check_page(browser, tmp_path, ZH, "zh")
        assert browser.execute_script("return document.documentElement.lang") == "zh-CN"

        # Tapping a network fills the name field.
        browser.find_element(By.XPATH, "//ul[@id='aps']/li[contains(., 'home-5')]").click()
        assert browser.find_element(By.ID, "ssid").get_attribute("value") == "home-5"

        # A wrong password first: the page shows the device's reason.
        browser.find_element(By.ID, "password").send_keys("wrong-password")
        browser.find_element(By.ID, "submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "wmsg"), "wrong password"))

        pw = browser.find_element(By.ID, "password")
        pw.clear()
        pw.send_keys(SECRET)
        browser.find_element(By.ID, "submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "wmsg"), ZH["savedas"]))
        wait.until(ec.text_to_be_present_in_element((By.ID, "saved"), "home-5"))
        assert browser.find_element(By.ID, "password").get_attribute("value") == ""

        # Server settings: OTA URL, token, and the protocol version (advanced, opened by _check_page).
        browser.find_element(By.ID, "ota_url").send_keys(OTA)
        browser.find_element(By.ID, "ws_token").send_keys("tok-abc-987")
        Select(browser.find_element(By.ID, "protocol_version")).select_by_visible_text("2")
        browser.find_element(By.ID, "adv_save").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "amsg"), ZH["saved"]))
        # A bad URL is refused with the key named.
        ws = browser.find_element(By.ID, "ws_url")
        ws.send_keys("http://not-a-ws-url/")
        browser.find_element(By.ID, "adv_save").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "amsg"), "ws_url"))
        ws.clear()

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
        wait.until(ec.text_to_be_present_in_element((By.ID, "xmsg"), ZH["leaving"]))
        wait_event(dev, "wifi", up=True, ssid="home-5")
        assert not any(SECRET in line for line in output(dev))


def test_english_from_config_and_delete_after_confirming(tmp_path, browser):
    By, ec, wait = _ui(browser)
    nets = [{"ssid": "home-5", "password": SECRET}, {"ssid": "old-net", "password": "old-pass-1"}]
    dev_ctx, url = _open(browser, tmp_path, {"language": "en-US", "wifi": nets}, button_held=True)
    with dev_ctx as dev:
        wait_event(dev, "portal")  # the button held at boot opens the portal though networks are saved
        browser.get(url)
        _check_page(browser, tmp_path, EN, "en")
        assert browser.execute_script("return document.documentElement.lang") == "en"

        # Delete asks first; Cancel keeps the network.
        old = "//ul[@id='saved']/li[contains(., 'old-net')]"
        wait.until(ec.presence_of_element_located((By.XPATH, old)))
        browser.find_element(By.XPATH, old + "/button").click()
        ask = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#saved li.ask")))
        assert ask.find_element(By.TAG_NAME, "span").text == EN["delq"]
        ask.find_element(By.XPATH, "button[.='%s']" % EN["cancel"]).click()
        wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, "#saved li.ask")))
        assert [n["ssid"] for n in json.loads((tmp_path / "config.json").read_text())["wifi"]] == ["home-5", "old-net"]

        # Confirmed, it goes.
        browser.find_element(By.XPATH, old + "/button").click()
        ask = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#saved li.ask")))
        ask.find_element(By.XPATH, "button[.='%s']" % EN["del"]).click()
        wait.until(ec.invisibility_of_element_located((By.XPATH, old)))
        assert json.loads((tmp_path / "config.json").read_text())["wifi"] == [nets[0]]
        assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#saved li span")] == ["home-5"]


def test_language_switch_is_remembered(tmp_path, browser):
    By, ec, wait = _ui(browser)
    dev_ctx, url = _open(browser, tmp_path, {})
    with dev_ctx as dev:
        wait_event(dev, "portal")
        browser.get(url)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), ZH["title"]))
        browser.find_element(By.ID, "lang").click()
        assert browser.find_element(By.TAG_NAME, "h1").text == EN["title"]
        assert browser.find_element(By.ID, "submit").text == "Connect"
        browser.refresh()  # the choice outlives the page, though the device's language is zh-CN
        wait.until(ec.text_to_be_present_in_element((By.ID, "submit"), "Connect"))
        browser.find_element(By.ID, "lang").click()
        assert browser.find_element(By.ID, "submit").text == "\u8fde\u63a5"
