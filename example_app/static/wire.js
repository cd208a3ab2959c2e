// The "On the wire" panel: fetches a download with the request headers a
// browser or a download manager sends (Range, If-Range, If-None-Match,
// HEAD) and prints each exchange, so that 206, 304 and 416 can be seen.
"use strict";

(function () {
  // Never more than this is read of a body: a probe that gets a whole
  // large file (a 200) stops there instead of downloading all of it.
  const MAX_BODY = 64 * 1024;

  async function exchange(log, url, method, headers) {
    const response = await fetch(url, {
      method: method,
      headers: headers,
      // Straight to the server: the browser's cache would answer or
      // rewrite conditional requests itself.
      cache: "no-store",
      credentials: "same-origin",
      redirect: "manual",
    });
    const lines = [`> ${method} ${url}`];
    for (const [name, value] of Object.entries(headers)) {
      lines.push(`> ${name}: ${value}`);
    }
    lines.push(`< ${response.status} ${response.statusText}`);
    for (const [name, value] of response.headers) {
      lines.push(`< ${name}: ${value}`);
    }
    let received = 0;
    if (response.body) {
      const reader = response.body.getReader();
      while (received < MAX_BODY) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
      }
      await reader.cancel();
    }
    lines.push(`  (${received} bytes of body read)`, "");
    log.textContent += lines.join("\n") + "\n";
    return response;
  }

  const probes = {
    head: async (log, url) => {
      await exchange(log, url, "HEAD", {});
    },
    range: async (log, url) => {
      await exchange(log, url, "GET", { Range: "bytes=0-99" });
    },
    // What a resumed download sends: the rest from where it stopped, if the
    // file is still the same version (else the server sends all of it).
    resume: async (log, url) => {
      const head = await exchange(log, url, "HEAD", {});
      const size = Number(head.headers.get("Content-Length"));
      const start = Math.max(size - 100, 0);
      const headers = { Range: `bytes=${start}-` };
      const validator = head.headers.get("ETag") || head.headers.get("Last-Modified");
      if (validator) headers["If-Range"] = validator;
      await exchange(log, url, "GET", headers);
    },
    // What a cache sends to check that its copy is still good: 304, no body.
    revalidate: async (log, url) => {
      const head = await exchange(log, url, "HEAD", {});
      const etag = head.headers.get("ETag");
      if (etag) {
        await exchange(log, url, "GET", { "If-None-Match": etag });
      } else {
        log.textContent += "No ETag: nothing to revalidate with.\n";
      }
    },
    "past-end": async (log, url) => {
      const head = await exchange(log, url, "HEAD", {});
      const size = Number(head.headers.get("Content-Length"));
      await exchange(log, url, "GET", { Range: `bytes=${size}-` });
    },
  };

  function setUp(panel) {
    const url = panel.dataset.url;
    const log = panel.querySelector(".wire-log");
    for (const button of panel.querySelectorAll("button[data-probe]")) {
      button.addEventListener("click", async () => {
        log.textContent = "";
        panel.dataset.state = "busy";
        try {
          await probes[button.dataset.probe](log, url);
        } catch (error) {
          log.textContent += `Request failed: ${error}\n`;
        }
        panel.dataset.state = "done";
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".wire").forEach(setUp);
  });
})();
