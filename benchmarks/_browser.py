"""Headless Chromium for the ``focusclip serve`` page: start it, and drive the page like a person does.

Used by ``benchmarks/serve.py`` (answer times, the README screenshot) and ``tests/test_serve_browser.py``.
The browser is Debian's ``chromium`` with its ``chromium-driver`` (``apt-get install chromium
chromium-driver``); nothing is downloaded. ``FOCUSCLIP_CHROMIUM`` / ``FOCUSCLIP_CHROMEDRIVER`` point
elsewhere. The flags keep Chromium off the network: no background requests, updates, sync or QUIC.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
    "--metrics-recording-only", "--mute-audio",
)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def browser_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) executables, each ``None`` when absent."""
    browser = os.environ.get("FOCUSCLIP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("FOCUSCLIP_CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def unavailable_reason() -> str | None:
    """Why a browser session cannot start here (``None`` when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    browser, driver = browser_paths()
    if browser is None:
        return "no chromium executable (apt-get install chromium)"
    if driver is None:
        return "no chromedriver executable (apt-get install chromium-driver)"
    return None


class Chromium:
    """One headless Chromium with a fresh profile; network requests are logged for :meth:`requests`."""

    def __init__(self, width: int = 1280, height: int = 1000):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager is not used (paths given)
        browser, driver = browser_paths()
        self.profile = tempfile.mkdtemp(prefix="focusclip-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver), options=opts)
        self._requests: list[str] = []

    def requests(self) -> list[str]:
        """Every URL the browser asked for since it started (documents, scripts, fonts, XHR, ...)."""
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                self._requests.append(msg["params"]["request"]["url"])
            elif msg.get("method") == "Network.webSocketCreated":
                self._requests.append(msg["params"]["url"])
        return list(self._requests)

    def external_requests(self) -> list[str]:
        """Requests over the network to anything but this machine (``data:``, ``blob:``, ``chrome:`` are local)."""
        return [u for u in self.requests() if urlparse(u).scheme in ("http", "https", "ws", "wss")
                and urlparse(u).hostname not in LOCAL_HOSTS]

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# JavaScript: click a button and time how long until an element's text contains a marker.
_CLICK_AND_TIME = """
const [buttonId, targetId, marker] = arguments;
const target = document.getElementById(targetId);
window.__fcDone = null;
const t0 = performance.now();
const check = () => {
  if (window.__fcDone === null && target.innerText.includes(marker)) {
    window.__fcDone = performance.now() - t0; observer.disconnect();
  }
};
const observer = new MutationObserver(check);
observer.observe(target, {subtree: true, childList: true, characterData: true});
document.getElementById(buttonId).click();
"""


class ServePage:
    """The ``focusclip serve`` page in a :class:`Chromium`, by the elements' ids (``fc-*``)."""

    def __init__(self, browser: Chromium, url: str, timeout: float = 60.0):
        self.browser = browser
        self.driver = browser.driver
        self.url = url
        self.timeout = timeout

    def _wait(self, condition: Any, what: str) -> Any:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, self.timeout, poll_frequency=0.02).until(condition)
        except TimeoutException:
            raise TimeoutError(f"the page did not show {what} within {self.timeout:.0f} s") from None

    def _css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def text(self, elem_id: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, elem_id).text

    def open(self) -> ServePage:
        self.driver.get(self.url)
        self._wait(lambda d: self._present("#fc-labels textarea") and self._present("#fc-photos input[type=file]"),
                   "its form")
        return self

    def leave(self) -> None:
        """Navigate away, closing the page's connections (a server then stops without waiting for them)."""
        self.driver.get("about:blank")

    def _present(self, selector: str) -> bool:
        from selenium.webdriver.common.by import By

        return bool(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def upload_photos(self, paths: Sequence[str | os.PathLike]) -> float:
        """Upload photos; seconds until the page says they are ready (or shows an error)."""
        t0 = time.perf_counter()
        self._css("#fc-photos input[type=file]").send_keys("\n".join(str(Path(p).resolve()) for p in paths))
        self._wait(lambda d: "ready" in self.text("fc-upload-status") or "fc-error" in self._html("fc-upload-status"),
                   "the upload's status")
        return time.perf_counter() - t0

    def choose_files(self, elem_id: str, paths: Sequence[str | os.PathLike]) -> None:
        """Put files into a file input without waiting for any answer (for uploads the page refuses)."""
        self._css(f"#{elem_id} input[type=file]").send_keys("\n".join(str(Path(p).resolve()) for p in paths))

    def toasts(self, contains: str = "") -> list[str]:
        """The texts of the notifications the page shows (Gradio's toasts); waits for one with ``contains``."""
        from selenium.webdriver.common.by import By

        def found(d: Any) -> list[str]:
            texts = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".toast-body")]
            return texts if any(contains in t for t in texts) else []

        return self._wait(found, f"a notification with {contains!r}")

    def upload_rois(self, paths: Sequence[str | os.PathLike]) -> None:
        names = [Path(p).name for p in paths]
        self._css("#fc-rois input[type=file]").send_keys("\n".join(str(Path(p).resolve()) for p in paths))
        self._wait(lambda d: all(self._present(f'#fc-rois td.filename[aria-label="{n}"]') for n in names),
                   "the ROI files")

    def _html(self, elem_id: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, elem_id).get_attribute("innerHTML")

    def _type(self, selector: str, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self._css(selector)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(text)

    def set_labels(self, text: str) -> None:
        self._type("#fc-labels textarea", text)

    def set_template(self, text: str) -> None:
        self._type("#fc-template textarea, #fc-template input", text)

    def set_topk(self, k: int) -> None:
        from selenium.webdriver.common.keys import Keys

        self._type("#fc-topk input[type=number]", str(k))
        self._css("#fc-topk input[type=number]").send_keys(Keys.TAB)

    def checkbox(self, elem_id: str) -> Any:
        """The ``<input type=checkbox>`` of a Gradio Checkbox."""
        return self._css(f"#{elem_id} input[type=checkbox]")

    def set_checkbox(self, elem_id: str, value: bool) -> None:
        box = self.checkbox(elem_id)
        if box.is_selected() != value:
            box.click()
        self._wait(lambda d: self.checkbox(elem_id).is_selected() == value, f"#{elem_id} {'on' if value else 'off'}")

    def click_and_time(self, button_id: str, target_id: str, marker: str) -> float:
        """Click ``button_id``; seconds (timed in the page) until ``target_id``'s text contains ``marker``.

        ``marker`` must be new to the element (text of the answer awaited, not of an earlier one).
        """
        self.driver.execute_script(_CLICK_AND_TIME, button_id, target_id, marker)
        ms = self._wait(lambda d: d.execute_script("return window.__fcDone"), f"{marker!r} in #{target_id}")
        return ms / 1000.0

    def classify(self, marker: str = "%") -> float:
        """Click Classify; seconds until the status line or the cards contain ``marker``."""
        return self.click_and_time("fc-classify", "fc-classify-output", marker)

    def search(self, query: str, marker: str = "ranked") -> float:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Search')]").click()
        self._type("#fc-query textarea, #fc-query input", query)
        return self.click_and_time("fc-search", "fc-search-status", marker)

    def download(self, button_id: str, folder: str | os.PathLike, name: str) -> Path:
        """Click a download button; the file the browser saved as ``folder/name``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, button_id).click()
        target = folder / name
        self._wait(lambda d: target.exists() and target.stat().st_size > 0, f"the download {name}")
        return target

    def screenshot(self, path: str | os.PathLike, palette: bool = False) -> Path:
        """Save what the window shows as a PNG; ``palette``: 256 colours (a fraction of the size, no visible
        loss for a page, as the docs' screenshots are)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not palette:
            self.driver.save_screenshot(str(path))
            return path
        import io

        from PIL import Image

        with Image.open(io.BytesIO(self.driver.get_screenshot_as_png())) as im:
            im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        return path

    # ----------------------------------------------------------------------------- people on a card
    def set_dropdown(self, elem_id: str, label: str) -> None:
        """Pick the option shown as ``label`` in a Gradio Dropdown."""
        from selenium.webdriver.common.by import By

        self._css(f"#{elem_id} input").click()
        option = self._wait(lambda d: next((o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]")
                                            if o.get_attribute("aria-label") == label), None), f"the option {label!r}")
        option.click()
        self._wait(lambda d: self._css(f"#{elem_id} input").get_attribute("value") == label, f"{label!r} chosen")

    def people(self, photo: int = 0) -> list[Any]:
        """The outlined people of a photo's card (the SVG groups, in their order)."""
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, f'#fc-cards .fc-card[data-photo="{photo}"] .fc-person')

    def answers(self, photo: int = 0) -> dict[str, str]:
        """The columns of a photo's card: ``{"whole": text, "1": text of person 1's column, ...}``."""
        from selenium.webdriver.common.by import By

        card = self._css(f'#fc-cards .fc-card[data-photo="{photo}"]')
        out = {"whole": card.find_element(By.CSS_SELECTOR, ".fc-whole").text}
        for col in card.find_elements(By.CSS_SELECTOR, ".fc-person-answer"):
            out[col.get_attribute("data-person")] = col.text
        return out

    def _act_and_wait(self, act: Any, marker: str) -> float:
        """Run ``act()`` (a pointer action); seconds until the status line contains ``marker``."""
        self.driver.execute_script(_WATCH, "fc-classify-output", marker)
        act()
        ms = self._wait(lambda d: d.execute_script("return window.__fcDone"), f"{marker!r} in #fc-classify-output")
        return ms / 1000.0

    def click_person(self, person: int, photo: int = 0, marker: str | None = None) -> float:
        """Click a person's outline (the mouse, as a person does); seconds until the answer shows."""
        from selenium.webdriver.common.action_chains import ActionChains

        target = next(g for g in self.people(photo) if g.get_attribute("data-person") == str(person))
        return self._act_and_wait(lambda: ActionChains(self.driver).move_to_element(target).click().perform(),
                                  marker or f"asked about person {person}")

    def drag_box(self, start: tuple[float, float], end: tuple[float, float], photo: int = 0,
                 marker: str = "asked about your box") -> float:
        """Drag from ``start`` to ``end`` (fractions of the photo's width and height) on a card's photo."""
        from selenium.webdriver.common.action_chains import ActionChains

        img = self._css(f'#fc-cards .fc-photo[data-photo="{photo}"] img')
        w, h = img.size["width"], img.size["height"]

        def offset(f: tuple[float, float]) -> tuple[int, int]:  # from the centre, as Selenium measures
            return round((f[0] - 0.5) * w), round((f[1] - 0.5) * h)

        def drag() -> None:
            (x0, y0), (x1, y1) = offset(start), offset(end)
            chain = ActionChains(self.driver).move_to_element_with_offset(img, x0, y0).click_and_hold()
            for t in (0.25, 0.5, 0.75, 1.0):
                chain = chain.move_to_element_with_offset(img, round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0)))
            chain.release().perform()

        return self._act_and_wait(drag, marker)

    def login(self, secret: str, user: str = "me") -> ServePage:
        """Sign in on Gradio's login form (a server started with a secret), then wait for the page's form."""
        from selenium.webdriver.common.by import By

        self.driver.get(self.url)
        self._wait(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=password]"), "the login form")
        inputs = self.driver.find_elements(By.CSS_SELECTOR, "input")
        next(i for i in inputs if i.get_attribute("type") != "password").send_keys(user)
        self._css("input[type=password]").send_keys(secret)
        next(b for b in self.driver.find_elements(By.CSS_SELECTOR, "button") if "login" in b.text.lower()).click()
        self._wait(lambda d: self._present("#fc-labels textarea"), "the page after the login")
        return self


# JavaScript: time how long until an element's text contains a marker (the action is done by Selenium).
_WATCH = """
const [targetId, marker] = arguments;
const target = document.getElementById(targetId);
window.__fcDone = null;
const t0 = performance.now();
const observer = new MutationObserver(() => {
  if (window.__fcDone === null && target.innerText.includes(marker)) {
    window.__fcDone = performance.now() - t0; observer.disconnect();
  }
});
observer.observe(target, {subtree: true, childList: true, characterData: true});
"""
