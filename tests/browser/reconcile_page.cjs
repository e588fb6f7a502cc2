// Drives the reconcile parts of millrace's operator page in headless Chromium (Debian's, through
// playwright-core):
//   node reconcile_page.cjs BASE_URL READ_TOKEN ENTITY FIELD refuse             click the actions with the read token only
//   node reconcile_page.cjs BASE_URL READ_TOKEN ENTITY FIELD TOKEN [SCREENSHOT] type the operator token, click "apply the owner's value"
// Gives the read token when the page asks for one, then waits for: the last reconcile report of
// ENTITY, the outstanding conflicts of ENTITY.FIELD, and both charts drawn with points (the
// throughput chart with a point above zero: some changes were applied). In "refuse" mode clicks
// "repair" of ENTITY and "apply the owner's value" of the group and reads both refusals; with a
// TOKEN clicks "apply the owner's value" and reads the reply (whatever it is), then whether the
// group is still listed once the page reloaded its data. With SCREENSHOT, saves a full-page PNG
// there. Prints one JSON line:
// {"external": [...], "report": ["cell", ...], "group": "...", "charts": {...},
//  "repair": "...", "apply": "...", "apply_reply": "...", "group_after": bool}; exits 1 on failure.
"use strict";
const { chromium } = require(process.env.MILLRACE_TEST_PLAYWRIGHT);

async function main() {
  const [base, readToken, entity, field, mode, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.MILLRACE_TEST_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    const external = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(base)) external.push(request.url());
    });
    await page.goto(base + "/", { waitUntil: "networkidle" });
    const login = page.locator("#login");
    await login.waitFor({ state: "visible", timeout: 15000 });
    await page.fill("#login-token", readToken);
    await login.locator("button").click();

    const report = page.locator(`#reconcile tbody tr[data-entity="${entity}"]`);
    await report.waitFor({ state: "visible", timeout: 15000 });
    const reportCells = await report.locator(":scope > td").allInnerTexts();
    const group = page.locator(`#conflict-groups tbody tr[data-entity="${entity}"][data-field="${field}"]`);
    await group.waitFor({ state: "visible", timeout: 15000 });
    const groupText = await group.innerText();

    // One sample every 10 s: wait for both charts to draw lines (two samples or more of a
    // series), and for the throughput line to leave the axis (a sample after the changes were
    // applied).
    await page.waitForFunction(() => {
      const lines = (id) => Number(document.getElementById(id).dataset.lines || 0);
      const line = document.querySelector("#chart-throughput path.series.odoo");
      if (!line || lines("chart-throughput") < 2 || lines("chart-lag") < 2) return false;
      const ys = (line.getAttribute("d").match(/[ML][\d.]+ [\d.]+/g) || []).map((p) => Number(p.split(" ")[1]));
      const baseline = Number(document.getElementById("chart-throughput").dataset.baseline);
      return ys.some((y) => y < baseline - 0.5);
    }, null, { timeout: 45000, polling: 500 });
    const charts = await page.evaluate(() => {
      const of = (id) => ({
        points: Number(document.getElementById(id).dataset.points || 0),
        lines: Number(document.getElementById(id).dataset.lines || 0),
        series: document.querySelectorAll("#" + id + " path.series").length,
        ticks: Array.from(document.querySelectorAll("#" + id + " text")).map((t) => t.textContent),
      });
      return {
        throughput: of("chart-throughput"),
        lag: of("chart-lag"),
        legend: document.getElementById("legend-throughput").innerText + " | " + document.getElementById("legend-lag").innerText,
      };
    });

    const reply = (id) => page.locator(`#${id} .line`);
    // Waits for the reply to an action: the line no longer says it is running.
    const answered = async (id, what) => {
      await page.waitForFunction(
        ([id, what]) => {
          const line = document.querySelector("#" + id + " .line");
          return line && line.textContent.startsWith(what) && !line.textContent.endsWith("running…");
        },
        [id, what],
        { timeout: 120000, polling: 200 },
      );
      return reply(id).innerText();
    };
    const applyWhat = `apply the owner's value of ${entity}.${field}`;
    let repairText = "";
    let applyText = "";
    let applyReply = "";
    let groupAfter = true;
    if (mode === "refuse") {
      await report.locator("button.repair").click();
      repairText = await answered("reconcile-reply", `repair of ${entity}`);
      await group.locator("button.apply-owner").click();
      applyText = await answered("conflicts-reply", applyWhat);
    } else {
      await page.fill("#token", mode);
      await group.locator("button.apply-owner").click();
      applyText = await answered("conflicts-reply", applyWhat);
      // The full reply sits folded under the line: its text, not what is on screen.
      applyReply = await page.locator("#conflicts-reply pre").textContent();
      // The page reloads its data after the reply: give it two refreshes.
      await page.waitForTimeout(6500);
      groupAfter = (await group.count()) > 0;
    }
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({
      external, report: reportCells, group: groupText, charts,
      repair: repairText, apply: applyText, apply_reply: applyReply, group_after: groupAfter,
    }));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
