// `elton serve` in a real browser: headless Chromium clicks through the listings, opens files, and a screenshot is kept.

import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tempDir } from '../helpers.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { commitSite, startGatewayProcess, stopAllGateways, HTML_NAME, UNICODE_NAME, type GatewayProcess, type Site } from './gateway-util.js';

const CHROMIUM = process.env.ELTON_CHROMIUM || '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The names in the listing's table, in order, as the browser renders them. */
const rowNames = (page: Page) => page.locator('tbody td.name a').allTextContents();

/** Clicks the listing link whose text is exactly `name`, and waits for the page it leads to. */
async function clickEntry(page: Page, name: string): Promise<void> {
  const link = page.locator('tbody td.name a').filter({ hasText: name }).and(page.getByText(name, { exact: true }));
  assert.equal(await link.count(), 1, `one link named ${JSON.stringify(name)} in ${JSON.stringify(await rowNames(page))}`);
  await Promise.all([page.waitForNavigation(), link.click()]);
}

describe('integration: elton serve in a browser (headless Chromium)', function () {
  this.timeout(60000);
  let master: MasterProcess | undefined;
  let gw: GatewayProcess | undefined;
  let site: Site;
  let browser: Browser | undefined;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      skipped: no Chromium at ${CHROMIUM} (install Debian's chromium, or set ELTON_CHROMIUM to a Chromium binary)`);
      this.skip();
    }
    this.timeout(120000);
    master = await startMasterProcess();
    site = await commitSite(master.url, 'web');
    gw = await startGatewayProcess(master.url);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
  });
  after(async () => {
    await browser?.close();
    await stopAllGateways();
    await master?.stop();
  });

  it('clicks from the trees to a version, into subdirectories and back, opens files, and keeps a screenshot', async () => {
    const page = await browser!.newPage({ viewport: { width: 1100, height: 800 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

    const first = await page.goto(`${gw!.url}/`);
    assert.equal(first?.status(), 200);
    assert.equal(await page.title(), 'trees');
    assert.ok((await rowNames(page)).includes('web/'), JSON.stringify(await rowNames(page)));

    await clickEntry(page, 'web/');
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), '/web/');
    assert.deepEqual(await rowNames(page), ['web@latest/', 'web@2/', 'web@1/']);
    assert.match(await page.locator('tr.dir').first().innerText(), /now web@2/);

    await clickEntry(page, 'web@1/');
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), '/web@1/');
    assert.equal(await page.locator('h1').innerText(), 'web@1:/');
    const names = await rowNames(page);
    for (const n of ['small.txt', 'big.bin', UNICODE_NAME, HTML_NAME, 'sub/', 'link-to-dir', 'escape']) assert.ok(names.includes(n), `${n} in ${JSON.stringify(names)}`);
    assert.ok(!names.includes('..'), 'no ".." above a version\'s root');
    assert.ok(!names.includes('v2.txt'), 'v2.txt is not in @1');
    // Table rows: one per entry, the kind as the row's class, sizes in the size column.
    assert.equal(await page.locator('tbody tr').count(), names.length);
    assert.equal(await page.locator('tbody tr.dir').count(), 1);
    assert.equal(await page.locator('tbody tr.symlink').count(), 3);
    const bigRow = page.locator('tbody tr').filter({ has: page.getByText('big.bin', { exact: true }) });
    assert.equal(await bigRow.locator('td.size').innerText(), '8.0 MiB');
    assert.match(await page.locator('tbody tr.symlink').filter({ hasText: 'link-to-dir' }).innerText(), /→ sub/);

    // The name made of markup is text, not markup.
    const htmlLink = page.locator('tbody td.name a').filter({ hasText: 'x&y' });
    assert.equal(await htmlLink.textContent(), HTML_NAME);
    assert.equal(await page.locator('b').count(), 0, 'no <b> element came out of a file name');
    assert.equal(await page.locator('tbody td.name a b, tbody td.name b').count(), 0);

    const shots = tempDir('elton-shots-');
    const shot = join(shots, 'gateway-listing.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot) && statSync(shot).size > 1024, `screenshot ${shot}: ${existsSync(shot) ? statSync(shot).size : 0} bytes`);
    assert.ok(readFileSync(shot).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'a PNG');
    console.log(`      screenshot: ${shot} (${statSync(shot).size} bytes; kept after the run with ELTON_KEEP_TEST_DIRS=1)`);

    // Down into sub/ and sub/deep/, then back up with "..".
    await clickEntry(page, 'sub/');
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), '/web@1/sub/');
    assert.deepEqual(await rowNames(page), ['..', 'data.json', 'deep/']);
    await clickEntry(page, 'deep/');
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), '/web@1/sub/deep/');
    assert.deepEqual(await rowNames(page), ['..', 'medium.bin', 'nested.txt']);
    await clickEntry(page, '..');
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), '/web@1/sub/');
    assert.deepEqual(await rowNames(page), ['..', 'data.json', 'deep/']);

    // A file: the click brings its bytes.
    await clickEntry(page, 'deep/');
    const [resp] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/nested.txt')), clickEntry(page, 'nested.txt')]);
    assert.equal(resp.status(), 200);
    assert.ok((await resp.body()).equals(site.files['sub/deep/nested.txt']));
    assert.equal((await page.locator('body').innerText()).trim(), site.files['sub/deep/nested.txt'].toString().trim());

    // The name with spaces and non-ASCII letters: listed as is, and its link works.
    await page.goto(`${gw!.url}/web@1/`);
    const [uni] = await Promise.all([page.waitForResponse((r) => decodeURIComponent(new URL(r.url()).pathname) === `/web@1/${UNICODE_NAME}`), clickEntry(page, UNICODE_NAME)]);
    assert.equal(uni.status(), 200);
    assert.ok((await uni.body()).equals(site.files[UNICODE_NAME]));
    assert.equal((await page.locator('body').innerText()).trim(), site.files[UNICODE_NAME].toString().trim());

    // The markup-named file opens too, and @latest shows v2.txt.
    await page.goto(`${gw!.url}/web@1/`);
    const [esc] = await Promise.all([page.waitForResponse((r) => r.url().includes('x%26y')), clickEntry(page, HTML_NAME)]);
    assert.equal(esc.status(), 200);
    assert.ok((await esc.body()).equals(site.files[HTML_NAME]));
    await page.goto(`${gw!.url}/web/`);
    await clickEntry(page, 'web@latest/');
    assert.ok((await rowNames(page)).includes('v2.txt'));

    // A user's HTML file is served sandboxed: it renders, but as an opaque origin.
    const html = await page.goto(`${gw!.url}/web@1/page.html`);
    assert.equal(html?.status(), 200);
    assert.equal(html?.headers()['content-security-policy'], 'sandbox');
    assert.equal(await page.locator('#p').innerText(), 'user html');

    assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), [], 'no page errors');
    await page.close();
  });
});
