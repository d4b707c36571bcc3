// Drives the dashboard of a running `rehearse --dashboard` of the demo estate in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core: no browser is downloaded).
// Env: DASHBOARD_URL (required), SCREENSHOT (a PNG path), CHROMIUM (default /usr/bin/chromium).
// Exits non-zero with a message on the first failed check. tests/dashboard_browser.rs runs it.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.DASHBOARD_URL;
const shot = process.env.SCREENSHOT || 'dashboard.png';
if (!url) throw new Error('DASHBOARD_URL is not set');

const fail = (msg) => { throw new Error('CHECK FAILED: ' + msg); };
const profile = mkdtempSync(join(tmpdir(), 'lrs-dashboard-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
});
const problems = [];
let posts = 0;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('dialog', async (d) => { problems.push('a dialog opened (script ran): ' + d.message()); await d.dismiss(); });
  page.on('request', (r) => { if (r.method() === 'POST') posts += 1; });

  await page.goto(url, { waitUntil: 'load' });
  const phaseOf = (folder) => page.getAttribute(`tr[data-folder="${folder}"]`, 'data-phase');
  const waitPhase = async (folder, want, ms) => {
    const until = Date.now() + ms;
    let got;
    while (Date.now() < until) {
      got = await phaseOf(folder);
      if (want.includes(got)) return got;
      await page.waitForTimeout(250);
    }
    fail(`${folder} should be ${want.join(' or ')}, the page shows ${got}`);
  };

  // 1. The demo estate's databases, with the right phases (auto-refresh brings them in).
  // AnalyticsDb is a SQL Server 2025 source the default (SQL Server 2022 policy) instance refuses.
  const expected = { SalesDb: 'Restoring', InventoryDb: 'Restoring', OrdersDb: 'Blocked', HrDb: 'Blocked', AnalyticsDb: 'Blocked' };
  for (const [folder, phase] of Object.entries(expected)) await waitPhase(folder, [phase], 60000);
  const rows = await page.$$eval('table.databases tbody tr', (trs) => trs.map((t) => t.dataset.folder));
  if (rows.length !== 5) fail('expected 5 database rows, got ' + JSON.stringify(rows));
  const word = await page.textContent('tr[data-folder="OrdersDb"] .phase');
  if (word.trim() !== 'Blocked') fail('the phase is shown as a word too, got ' + word);
  await page.evaluate(() => { window.__notReloaded = true; });

  // 2. The gap between OrdersDb_02_log.trn and OrdersDb_04_log.trn is drawn where it is.
  await page.click('details[data-folder="OrdersDb"] > summary');
  const gap = await page.$eval('details[data-folder="OrdersDb"] li.gap', (li) => ({
    text: li.textContent,
    before: li.previousElementSibling && li.previousElementSibling.textContent,
    after: li.nextElementSibling && li.nextElementSibling.textContent,
    visible: li.getBoundingClientRect().width > 0,
  }));
  if (!gap.visible || !/missing LSN \d+ – \d+/.test(gap.text)) fail('gap box: ' + JSON.stringify(gap));
  if (!gap.before.includes('OrdersDb_02_log.trn') || !gap.after.includes('OrdersDb_04_log.trn')) {
    fail('the gap is not between OrdersDb_02_log.trn and OrdersDb_04_log.trn: ' + JSON.stringify(gap));
  }

  // 3. A file named like markup is text: no element made of it, no script run.
  await page.click('details[data-folder="HrDb"] > summary');
  const hostile = '<img src=x onerror=alert(1)>.trn';
  const names = await page.$$eval('details[data-folder="HrDb"] .other .file', (s) => s.map((e) => e.textContent));
  if (!names.includes(hostile)) fail('the hostile file name is not shown as text: ' + JSON.stringify(names));
  if ((await page.$$('main img')).length !== 0) fail('an <img> element appeared in the page');

  // 4. The typed-name confirmation is required before a cutover is sent.
  await page.click('details[data-folder="SalesDb"] > summary');
  const form = 'details[data-folder="SalesDb"] form.cutover';
  const tail = await page.$eval(`${form} select[name=lastBackupName]`, (s) => s.value);
  if (tail !== 'SalesDb_05_tail.trn') fail('the newest log backup should be offered first, got ' + tail);
  await page.fill(`${form} input[name=confirm]`, 'salesdb');
  await page.click(`${form} button[type=submit]`);
  await page.waitForTimeout(500);
  const refused = await page.textContent(`${form} .result`);
  if (posts !== 0) fail(`a cutover was sent without the exact name (${posts} POST)`);
  if (!/exactly/.test(refused)) fail('no explanation after a wrong name: ' + refused);
  if ((await phaseOf('SalesDb')) !== 'Restoring') fail('SalesDb changed phase without a cutover');

  await page.fill(`${form} input[name=confirm]`, 'SalesDb');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click(`${form} button[type=submit]`),
  ]);
  if (response.status() !== 200) fail('cutover answered ' + response.status() + ': ' + (await response.text()));
  if (posts !== 1) fail('expected exactly one POST, saw ' + posts);

  // 5. Auto-refresh shows the phase change, in place (no reload).
  await waitPhase('SalesDb', ['Completed'], 90000);
  if (!(await page.evaluate(() => window.__notReloaded === true))) fail('the page reloaded instead of refreshing in place');
  const tailState = await page.textContent('tr[data-folder="SalesDb"] td:nth-child(7)');
  if (!/completion sent: SalesDb_05_tail\.trn/.test(tailState)) fail('tail-log state: ' + tailState);
  if ((await phaseOf('InventoryDb')) !== 'Restoring') fail('InventoryDb must not be cut over');

  // Open the detail views worth seeing, then the screenshot.
  await page.evaluate(() => document.querySelectorAll('details[data-folder="SalesDb"], details[data-folder="HrDb"]').forEach((d) => { d.open = false; }));
  await page.screenshot({ path: shot, fullPage: true });

  if (problems.length) fail('console or page errors:\n' + problems.join('\n'));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

// 6. With JavaScript off the page still shows everything, and the form still needs the name.
const profile2 = mkdtempSync(join(tmpdir(), 'lrs-dashboard-chromium-nojs-'));
const noJs = await chromium.launchPersistentContext(profile2, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  javaScriptEnabled: false,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = noJs.pages()[0] || (await noJs.newPage());
  // The wrong-name refusal below is a 400 page by design; Chromium logs that status.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 400/.test(m.text())) problems.push('console (no JS): ' + m.text());
  });
  await page.goto(url, { waitUntil: 'load' });
  const phases = await page.$$eval('table.databases tbody tr', (trs) => trs.map((t) => t.dataset.folder + '=' + t.dataset.phase).join(' '));
  if (phases !== 'AnalyticsDb=Blocked HrDb=Blocked InventoryDb=Restoring OrdersDb=Blocked SalesDb=Completed') fail('without JS: ' + phases);
  await page.click('details[data-folder="InventoryDb"] > summary');
  const form = 'details[data-folder="InventoryDb"] form.cutover';
  await page.fill(`${form} input[name=confirm]`, 'Inventory');
  await Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
  const refusedText = await page.textContent('body');
  if (!/type the database name InventoryDb exactly/.test(refusedText)) fail('without JS a wrong name is refused by the server: ' + refusedText);
  await page.goto(url, { waitUntil: 'load' });
  await page.click('details[data-folder="InventoryDb"] > summary');
  await page.fill(`${form} input[name=confirm]`, 'InventoryDb');
  await Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
  const said = await page.textContent('body');
  if (!/cutover declared for InventoryDb/.test(said)) fail('without JS the form cutover failed: ' + said);
  if (problems.length) fail('console errors:\n' + problems.join('\n'));
} finally {
  await noJs.close();
  rmSync(profile2, { recursive: true, force: true });
}
console.log(`browser checks passed; screenshot ${shot}`);
