// Records a browser's HAR the way QA would attach one to a ticket: Debian's Chromium, headless,
// driven by Playwright (playwright-core, with its HAR recorder, frames embedded), opens a page
// of the gateway's own origin, loads the official socket.io client and opens two sockets
// through the gateway: one as the page would (sticky cookie kept by the browser, polling then
// WebSocket), and then, three times, one whose requests carry `X-Stickiness: off` (the
// chain's round-robin router), which breaks with `Session ID unknown`. When the first has
// upgraded and the others have broken, all are closed, the HAR is written, and a JSON line
// says what the page saw.
//
// usage: NODE_PATH=… node record_har.js GATEWAY HAR_PATH
'use strict';
const { chromium } = require('playwright-core');

async function main() {
  const [gateway, harPath] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    const context = await browser.newContext({ recordHar: { path: harPath, content: 'embed' } });
    const page = await context.newPage();
    // Any page of the gateway's origin: the sockets are then same-origin, cookies and all.
    await page.goto(`${gateway}/stickyscope-har-page`);
    // The browser build of the official client, from the node_modules NODE_PATH names.
    const client = require('path').join(
      process.env.NODE_PATH.split(':')[0], 'socket.io-client', 'dist', 'socket.io.min.js');
    await page.addScriptTag({ path: client });
    const seen = await page.evaluate(() => new Promise((resolve) => {
      const seen = { sticky: null, stickyTransport: null, offAttempts: 0, offBroke: [] };
      // As a page would: the browser keeps the sticky cookie; polling, then WebSocket.
      const sticky = io({ forceNew: true, reconnection: false });
      // Round-robin: three tries by hand (the client's own reconnection starts over each
      // time a handshake succeeds, and one always does), each breaking on its own.
      let off = null;
      const tryOff = () => {
        seen.offAttempts += 1;
        off = io({ forceNew: true, transports: ['polling'], reconnection: false,
                   extraHeaders: { 'X-Stickiness': 'off' } });
        const broke = (why) => {
          if (off.brokeOnce) return;
          off.brokeOnce = true;
          seen.offBroke.push(String(why));
          off.close();
          if (seen.offAttempts < 3) setTimeout(tryOff, 100); else check();
        };
        off.on('connect_error', (e) => broke(e && e.message));
        off.on('disconnect', (reason) => broke(reason));
      };
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        seen.stickyTransport = sticky.io.engine ? sticky.io.engine.transport.name : null;
        sticky.close();
        if (off) off.close();
        resolve(seen);
      };
      const check = () => {
        const upgraded = sticky.io.engine && sticky.io.engine.transport.name === 'websocket';
        const offDone = seen.offBroke.length >= 3;
        if (upgraded && offDone) finish();
      };
      sticky.on('connect', () => { seen.sticky = 'connected'; tryOff(); });
      setInterval(check, 100);
      setTimeout(finish, 20000);
    }));
    await context.close();
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
