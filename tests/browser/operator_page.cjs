// Drives millrace's operator page in headless Chromium (Debian's, through playwright-core):
//   node operator_page.cjs BASE_URL DEAD_LETTER_ID refuse [READ_TOKEN]   click "retry" without an operator token
//   node operator_page.cjs BASE_URL DEAD_LETTER_ID TOKEN [READ_TOKEN]    type the token, click "retry"
// With READ_TOKEN, the page must first ask for a token (the API answers 401): the script gives
// it, then reloads the page, which must not ask again (the tab keeps it). Checks that the page
// requests nothing but millrace itself and shows the dead letter; after a retry with a token,
// waits for the action in the page's "Operator actions". Prints one JSON line:
// {"external": [...], "asked": bool, "asked_again": bool, "row": "...", "message": "...",
//  "actions": ["...", ...]}; exits 1 on failure.
"use strict";
const { chromium } = require(process.env.MILLRACE_TEST_PLAYWRIGHT);

async function main() {
  const [base, id, mode, readToken] = process.argv.slice(2);
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
    const login = page.locator("#login");
    let asked = false;
    let askedAgain = false;
    if (readToken) {
      await login.waitFor({ state: "visible", timeout: 15000 });
      asked = (await row.count()) === 0;
      await page.fill("#login-token", readToken);
      await login.locator("button").click();
      await row.waitFor({ state: "visible", timeout: 15000 });
      await page.reload({ waitUntil: "networkidle" });
      await row.waitFor({ state: "visible", timeout: 15000 });
      askedAgain = await login.isVisible();
    } else {
      await row.waitFor({ state: "visible", timeout: 15000 });
    }
    const rowText = await row.innerText();
    if (mode !== "refuse") await page.fill("#token", mode);
    await row.locator("button.retry").click();
    const message = page.locator("#message");
    await message.filter({ hasText: `dead letter ${id}` }).waitFor({ timeout: 15000 });
    const text = await message.innerText();
    let actions = [];
    if (mode !== "refuse") {
      const action = page.locator("#operator-actions tbody tr").filter({ hasText: "http" }).filter({ hasText: id });
      await action.first().waitFor({ timeout: 15000 });
      actions = await page.locator("#operator-actions tbody tr").allInnerTexts();
    }
    console.log(JSON.stringify({ external, asked, asked_again: askedAgain, row: rowText, message: text, actions }));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
