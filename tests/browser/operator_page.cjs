// Drives millrace's operator page in headless Chromium (Debian's, through playwright-core):
//   node operator_page.cjs BASE_URL DEAD_LETTER_ID refuse   click "retry" without a token
//   node operator_page.cjs BASE_URL DEAD_LETTER_ID TOKEN    type the token, click "retry"
// Checks that the page requests nothing but millrace itself and shows the dead letter, then
// prints one JSON line: {"external": [...], "row": "...", "message": "..."}; exits 1 on failure.
"use strict";
const { chromium } = require(process.env.MILLRACE_TEST_PLAYWRIGHT);

async function main() {
  const [base, id, mode] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.MILLRACE_TEST_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage();
    const external = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(base)) external.push(request.url());
    });
    await page.goto(base + "/", { waitUntil: "networkidle" });
    const row = page.locator(`#dead-letters tr[data-id="${id}"]`);
    await row.waitFor({ state: "visible", timeout: 15000 });
    const rowText = await row.innerText();
    if (mode !== "refuse") await page.fill("#token", mode);
    await row.locator("button.retry").click();
    const message = page.locator("#message");
    await message.filter({ hasText: `dead letter ${id}` }).waitFor({ timeout: 15000 });
    const text = await message.innerText();
    console.log(JSON.stringify({ external, row: rowText, message: text }));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
