"""The page at / in a real browser: headless Chromium (Debian's `chromium`) clicks through a question about the demo
image while `eaglet serve` answers, and the answer must stream into the page and end as the checkpoint's expected
text. Run by `make serve-page-check` (chapter 17); standard library only.

The browser is driven through the Chrome DevTools Protocol over a pipe (--remote-debugging-pipe: commands go in on
file descriptor 3 and replies come out on 4, each a JSON message ending in a NUL byte), so no websocket library or
driver is needed. Steps: start the server (--port 0, slowed to --decode-delay-ms per token so that the stream can be
watched), open the page, put demo.png in the file input, type the question, click "Ask" with real mouse events, then
read the answer box every 20 ms until the status says done. Pass: the final answer equals demo.json's "expected", the
box showed at least two different partial answers on the way (it streamed), and the status names the finish reason.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


class Browser:
    """Headless Chromium with the DevTools Protocol on a pipe."""

    def __init__(self, binary):
        self.commands_r, self.commands_w = os.pipe()  # we write commands, the browser reads fd 3
        self.replies_r, self.replies_w = os.pipe()  # the browser writes fd 4, we read replies
        self.profile = tempfile.mkdtemp(prefix="eaglet-page-check-")

        def child_fds():
            # Through high numbers first, so that neither end lands on the other's target before it is copied.
            a, b = os.dup2(self.commands_r, 100), os.dup2(self.replies_w, 101)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--window-size=900,800", "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self.commands_r)
        os.close(self.replies_w)
        self.next_id = 0
        self.buffer = b""
        self.session = None

    def read_message(self):
        while b"\0" not in self.buffer:
            data = os.read(self.replies_r, 65536)
            if not data:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += data
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=True):
        """Sends one command and returns its result (events that arrive meanwhile are dropped)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.commands_w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && document.getElementById('send') !== null")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression, timeout=30):
        start = time.time()
        while time.time() - start < timeout:
            if self.evaluate(expression):
                return
            time.sleep(0.02)
        raise RuntimeError(f"timed out waiting for {expression}")

    def node(self, selector):
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        return self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]

    def click(self, selector):
        """A real click: mouse pressed and released at the middle of the element."""
        quad = self.send("DOM.getBoxModel", {"nodeId": self.node(selector)})["model"]["content"]
        x, y = (quad[0] + quad[4]) / 2, (quad[1] + quad[5]) / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def close(self):
        self.process.kill()
        self.process.wait()


def start_server(eaglet, model, delay_ms):
    log = tempfile.NamedTemporaryFile(prefix="eaglet-serve-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [eaglet, "serve", "--model", model, "--port", "0", "--decode-delay-ms", str(delay_ms)],
        stdout=subprocess.DEVNULL, stderr=log)
    start = time.time()
    while time.time() - start < 60:
        with open(log.name) as f:
            m = re.search(r"listening on (http://\S+)", f.read())
        if m:
            return server, m.group(1), log.name
        if server.poll() is not None:
            break
        time.sleep(0.05)
    server.kill()
    raise RuntimeError("eaglet serve did not start: " + open(log.name).read())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--eaglet", default=".build/release/eaglet")
    p.add_argument("--model", default="Fixtures/tiny-eagle")
    p.add_argument("--chromium", default="chromium")
    p.add_argument("--decode-delay-ms", type=int, default=150)
    p.add_argument("--screenshot", help="write a PNG of the page after the answer")
    args = p.parse_args()
    demo = json.load(open(os.path.join(args.model, "demo.json")))
    image = os.path.abspath(os.path.join(args.model, "demo.png"))

    server, url, log = start_server(args.eaglet, args.model, args.decode_delay_ms)
    browser = Browser(args.chromium)
    try:
        browser.open(url + "/")
        browser.send("DOM.setFileInputFiles", {"files": [image], "nodeId": browser.node("#image")})
        browser.wait_for("document.getElementById('preview').naturalWidth > 0")
        browser.evaluate("document.getElementById('question').value = " + json.dumps(demo["question"]))
        browser.click("#send")
        seen, state, start = [], "busy", time.time()
        while state not in ("done", "error") and time.time() - start < 60:
            answer = browser.evaluate("document.getElementById('answer').textContent")
            if answer and (not seen or seen[-1] != answer):
                seen.append(answer)
            state = browser.evaluate("document.getElementById('status').dataset.state")
            time.sleep(0.02)
        answer = browser.evaluate("document.getElementById('answer').textContent")
        status = browser.evaluate("document.getElementById('status').textContent")
        if args.screenshot:
            import base64
            png = browser.send("Page.captureScreenshot", {"format": "png"})["data"]
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(png))
        print(f"question: {demo['question']}")
        print(f"answer:   {answer}")
        print(f"status:   {status}")
        print(f"partial answers seen while streaming: {len([s for s in seen if s != answer])}")
        ok = state == "done" and answer == demo["expected"] and len(seen) >= 3 and "done (stop)" in status
        print("serve-page-check: " + ("ok" if ok else f"FAILED (expected {demo['expected']!r})"))
        return 0 if ok else 1
    finally:
        browser.close()
        server.terminate()
        server.wait()
        os.unlink(log)


if __name__ == "__main__":
    sys.exit(main())
