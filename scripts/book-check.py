#!/usr/bin/python3
"""The book as a reader sees it: every page of the built book, served on
127.0.0.1 and opened in headless Chromium (Debian's chromium, chromium-driver
and python3-selenium). Prints one line per problem and exits 1 if there is any:

  link     an <a href> to a page of the book that does not exist, or to a
           #fragment that is not an id on that page
  missing  an image (or any file the page asks for) the server does not have
  console  an error in the browser console
  empty    a code block with nothing in it (an {{#include}} whose anchor
           matched no lines)
  wide     a code block wider than the content column at desktop width
           (1280 px): the reader would have to scroll it to see its end.
           ```rust listings (the real code, up to 100 columns as rustfmt
           makes it) wrap with a hanging indent (book-scroll.js); consoles,
           outputs, diagrams and shell listings must fit as they are.
  phone    something wider than the screen at phone width (390 px), other
           than a code block or a table, which scroll on their own: mdBook
           hides what passes the page's right edge, so the reader never sees it
  fetch    a request to anything but the local server (the book must read
           offline: no CDN fonts or scripts)
  search   the book's search box, typed into, does not list the right page
           among the first results (pivot_root: the rootfs chapter; pause:
           the pod chapter)

It also saves screenshots (whole pages) of the introduction, the pod chapter
and the workshop page at 1280 and 390 px wide under OUT (CI keeps them).

  scripts/book-check.py [--book book/build] [--out target/book-check]
  scripts/book-check.py --self-test    the check must fail on a broken copy

Run it through scripts/book-check.sh, which builds nothing: run
`mdbook build book` first.
"""

import argparse
import base64
import functools
import html.parser
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

DESKTOP = (1280, 800)
PHONE = (390, 844)
SCREENSHOTS = ["introduction.html", "ch06-pod.html", "workshop.html"]
SEARCHES = [("pivot_root", "ch04-rootfs.html"), ("pause", "ch06-pod.html")]
SEARCH_RANK = 3  # the right page must be among this many first results


class Server:
    """python3 -m http.server, on a free port of 127.0.0.1, in a thread; it
    remembers every request it could not answer."""

    def __init__(self, root):
        failed = self.failed = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                if str(code) >= "400":
                    failed.append((self.path, int(code)))

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def take_failed(self):
        failed, self.failed[:] = list(self.failed), []
        return failed

    def stop(self):
        self.httpd.shutdown()


class Ids(html.parser.HTMLParser):
    """The ids (and <a name>s) of a page, as written in its HTML."""

    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def ids_of(path):
    parser = Ids()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    return parser.ids


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in [
        "--headless=new",
        "--no-sandbox",  # CI runs us as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=%d,%d" % DESKTOP,
    ]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    return driver


def set_width(driver, size, mobile):
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


# Everything we look at on a page, measured in the page.
MEASURE = r"""
const main = document.querySelector('main');
function where(element) {
    // The heading above an element, to say where on the page it is.
    let heading = null;
    for (const h of main.querySelectorAll('h1[id], h2[id], h3[id], h4[id]')) {
        if (h.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING) {
            heading = h;
        }
    }
    return heading ? '#' + heading.id : '';
}
const links = Array.from(document.querySelectorAll('a[href]')).map(a =>
    [a.getAttribute('href'), a.href]);
const images = Array.from(document.querySelectorAll('img')).filter(img =>
    !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute('src'));
const blocks = Array.from(main ? main.querySelectorAll('pre') : []).map(pre => {
    const code = pre.querySelector('code') || pre;
    const language = (code.className.match(/language-(\S+)/) || [null, ''])[1];
    const lines = code.textContent.split('\n');
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    const over = Math.max(pre.scrollWidth - pre.clientWidth,
                          code.scrollWidth - code.clientWidth);
    return {language: language, empty: code.textContent.trim() === '',
            over: over, columns: longest.length, line: longest.trim(),
            where: where(pre)};
});
// What passes the right edge of the window, outside the blocks that scroll
// on their own; its outermost element only.
const past = [];
for (const element of main ? main.querySelectorAll('*') : []) {
    if (element.parentElement.closest('pre, .table-wrapper')) continue;
    const over = element.getBoundingClientRect().right - window.innerWidth;
    if (over >= 1 && !past.some(p => p.element.contains(element))) {
        past.push({element: element, over: over});
    }
}
return {links: links, images: images, blocks: blocks,
        past: past.map(p => ({tag: p.element.tagName.toLowerCase(),
                              over: Math.round(p.over), where: where(p.element),
                              text: p.element.textContent.trim().slice(0, 40)}))};
"""


class Check:
    def __init__(self, book, out, pages=None, screenshots=True, search=True):
        self.book = os.path.abspath(book)
        self.out = out
        self.pages = pages or sorted(
            name for name in os.listdir(self.book) if name.endswith(".html")
        )
        self.screenshots = screenshots
        self.search = search
        self.problems = []
        self.notes = []

    def problem(self, kind, page, text):
        line = "%-8s %s: %s" % (kind, page, text)
        if line not in self.problems:  # pages are opened at both widths
            self.problems.append(line)

    def run(self):
        server = Server(self.book)
        driver = browser()
        try:
            self.check_pages(driver, server)
            if self.search:
                self.check_search(driver, server)
            if self.screenshots:
                self.take_screenshots(driver, server)
        finally:
            driver.quit()
            server.stop()
        return self.problems

    def open(self, driver, server, page):
        driver.get_log("browser")  # forget what earlier pages logged
        driver.get_log("performance")
        driver.get(server.origin + "/" + page)
        # toc.js fills the sidebar, book.js sets the theme: let them finish.
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def after_load(self, driver, server, page):
        for entry in driver.get_log("browser"):
            if entry["level"] == "SEVERE" and "/favicon.ico " not in entry["message"]:
                self.problem("console", page, entry["message"].replace(server.origin, ""))
        for entry in driver.get_log("performance"):
            message = entry["message"]
            if '"Network.requestWillBeSent"' not in message:
                continue
            for url in re.findall(r'"url":"([a-z]+://[^"]*)"', message):
                if not url.startswith(server.origin) and not url.startswith("data:"):
                    self.problem("fetch", page, "asks for %s (not the local server)" % url)
        for path, code in server.take_failed():
            if path == "/favicon.ico":
                continue  # the browser's own guess, for a page without <link rel="icon">
            self.problem("missing", page, "%s (HTTP %d)" % (path, code))

    def check_pages(self, driver, server):
        links = 0
        for width, mobile in [(DESKTOP, False), (PHONE, True)]:
            set_width(driver, width, mobile)
            for page in self.pages:
                self.open(driver, server, page)
                found = driver.execute_script(MEASURE)
                self.after_load(driver, server, page)
                if mobile:
                    for element in found["past"]:
                        self.problem(
                            "phone", page,
                            "a <%s> at %s passes the screen's edge by %d px: %s"
                            % (element["tag"], element["where"] or "the top",
                               element["over"], element["text"]),
                        )
                    continue
                for href, url in found["links"]:
                    links += self.check_link(page, href, url, server)
                for src in found["images"]:
                    self.problem("missing", page, "image %s does not load" % src)
                for block in found["blocks"]:
                    if block["empty"]:
                        self.problem("empty", page, "an empty code block at %s"
                                     % (block["where"] or "the top"))
                    elif block["over"] > 0:
                        self.problem(
                            "wide", page,
                            "a %s block at %s is %d columns, %d px wider than "
                            "the column: %s"
                            % (block["language"] or "plain", block["where"] or "the top",
                               block["columns"], block["over"], block["line"][:50]),
                        )
        self.notes.append(
            "%d pages at %d and %d px, %d internal links checked"
            % (len(self.pages), DESKTOP[0], PHONE[0], links)
        )

    def check_link(self, page, href, url, server):
        if not url.startswith(server.origin + "/"):
            return 0  # another site, mailto:, javascript:: not ours to check
        if page == "404.html" and href.startswith("#"):
            # mdBook's 404 page has <base href="/">, to work at any address: the
            # anchor of its own heading points at the index. mdBook's, not ours.
            return 0
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parts.path).lstrip("/")
        if path == "" or path.endswith("/"):
            path += "index.html"
        target = os.path.join(self.book, path)
        if not os.path.isfile(target):
            self.problem("link", page, '<a href="%s">: there is no %s' % (href, path))
        elif parts.fragment and target.endswith(".html"):
            fragment = urllib.parse.unquote(parts.fragment)
            if fragment not in ids_of(target):
                self.problem(
                    "link", page, '<a href="%s">: %s has no id "%s"' % (href, path, fragment)
                )
        return 1

    def check_search(self, driver, server):
        set_width(driver, DESKTOP, False)
        for word, expected in SEARCHES:
            self.open(driver, server, "introduction.html")
            driver.find_element(By.ID, "search-toggle").click()
            bar = driver.find_element(By.ID, "searchbar")
            WebDriverWait(driver, 10).until(lambda d: bar.is_displayed())
            bar.send_keys(word)
            try:
                WebDriverWait(driver, 10).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#searchresults li a")
                )
            except TimeoutException:
                self.problem("search", "introduction.html", '"%s" lists nothing' % word)
                continue
            pages = []
            for a in driver.find_elements(By.CSS_SELECTOR, "#searchresults li a"):
                name = urllib.parse.urlsplit(a.get_attribute("href")).path.lstrip("/")
                if name not in pages:
                    pages.append(name)
            self.after_load(driver, server, "introduction.html (search)")
            rank = pages.index(expected) + 1 if expected in pages else None
            if rank is None or rank > SEARCH_RANK:
                self.problem(
                    "search", "introduction.html",
                    '"%s" lists %s first, not %s' % (word, ", ".join(pages[:SEARCH_RANK]), expected),
                )
            else:
                self.notes.append(
                    'search "%s": %s is result %d of %d pages (%s)'
                    % (word, expected, rank, len(pages), ", ".join(pages[:3]))
                )

    def take_screenshots(self, driver, server):
        os.makedirs(self.out, exist_ok=True)
        for width, mobile in [(DESKTOP, False), (PHONE, True)]:
            set_width(driver, width, mobile)
            for page in SCREENSHOTS:
                self.open(driver, server, page)
                height = driver.execute_script(
                    "return document.scrollingElement.scrollHeight")
                shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width[0], "height": height, "scale": 1},
                })
                name = os.path.join(self.out, "%s-%d.png" % (page[:-5], width[0]))
                with open(name, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                self.notes.append("screenshot %s (%dx%d)" % (name, width[0], height))


def self_test(book, out):
    """A copy of the built book with one link broken on purpose and one
    console block made too wide: the check must fail, naming both."""
    copy = os.path.join(out, "broken-book")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(book, copy)
    page = os.path.join(copy, "introduction.html")
    with open(page, encoding="utf-8") as f:
        text = f.read()
    main = text.index("<main>")
    head, body = text[:main], text[main:]
    body, links = re.subn(r'href="(ch0[0-9][a-z0-9-]*\.html)"',
                          r'href="\1#broken-on-purpose"', body, count=1)
    wide = "echo " + "far-too-wide-" * 8
    body, blocks = re.subn(r'(<code class="language-console[^"]*">)',
                           r"\1" + wide + "\n", body, count=1)
    assert links == 1 and blocks == 1, "introduction.html changed: update the self-test"
    with open(page, "w", encoding="utf-8") as f:
        f.write(head + body)
    result = subprocess.run(
        [sys.executable, __file__, "--book", copy, "--out", out,
         "--pages", "introduction.html", "--no-search", "--no-screenshots"],
        capture_output=True, text=True, check=False,
    )
    print(result.stdout + result.stderr, end="")
    lines = result.stdout.splitlines()
    broke = [l for l in lines if l.startswith("link") and "#broken-on-purpose" in l]
    widened = [l for l in lines if l.startswith("wide") and "far-too-wide" in l]
    if result.returncode == 1 and broke and widened:
        print("self-test passed: the check failed on the broken copy and named both problems")
        return 0
    print("SELF-TEST FAILED: the check did not fail on the broken link and the wide block")
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--book", default="book/build")
    parser.add_argument("--out", default="target/book-check")
    parser.add_argument("--pages", nargs="*", help="only these pages (default: all)")
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    # `timeout` sends SIGTERM: leave through the finally that quits Chromium.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("book-check.py: out of time"))
    if args.self_test:
        return self_test(args.book, args.out)
    check = Check(args.book, args.out, args.pages,
                  screenshots=not args.no_screenshots, search=not args.no_search)
    problems = check.run()
    for note in check.notes:
        print(note)
    for line in problems:
        print(line)
    if problems:
        print("%d problems" % len(problems))
        return 1
    print("the book reads right in Chromium")
    return 0


if __name__ == "__main__":
    sys.exit(main())
