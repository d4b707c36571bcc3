// Auto-refresh and the cutover form. The page works without this file: it refreshes by
// <noscript> meta tag and the form posts normally. The function key, when the page was opened
// with ?code=, is sent in a header: it is never written into the page or into a URL.
'use strict';
(() => {
  const key = new URLSearchParams(location.search).get('code');
  const headers = (extra) => (key ? { ...extra, 'x-functions-key': key } : extra);
  const status = (text) => { const s = document.getElementById('refresh-status'); if (s) s.textContent = text; };
  let busy = false;

  async function refresh(force) {
    const active = document.activeElement;
    // Never swap the page under someone typing a confirmation.
    if (busy || (!force && active && active.closest && active.closest('form.cutover'))) return;
    busy = true;
    try {
      const r = await fetch(location.href, { headers: headers({ Accept: 'text/html' }), cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      const fresh = doc.getElementById('main');
      if (!fresh) throw new Error('unexpected page');
      const open = new Set([...document.querySelectorAll('details[open]')].map((d) => d.id));
      fresh.querySelectorAll('details').forEach((d) => { d.open = open.has(d.id); });
      const results = new Map([...document.querySelectorAll('form.cutover')].map((f) => [f.closest('details').id, f.querySelector('.result').textContent]));
      fresh.querySelectorAll('form.cutover').forEach((f) => { const t = results.get(f.closest('details').id); if (t) f.querySelector('.result').textContent = t; });
      document.getElementById('main').replaceWith(document.adoptNode(fresh));
      const g = doc.getElementById('generated');
      if (g) document.getElementById('generated').textContent = g.textContent;
      status('');
    } catch (e) {
      status('(refresh failed: ' + e.message + ')');
    } finally {
      busy = false;
    }
  }

  document.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (!form.matches('form.cutover')) return;
    ev.preventDefault();
    const out = form.querySelector('.result');
    if (form.elements.confirm.value !== form.dataset.database) {
      out.textContent = 'Type the database name exactly to confirm the cutover.';
      return;
    }
    out.textContent = 'Sending…';
    try {
      const r = await fetch(form.action, {
        method: 'POST',
        headers: headers({ 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }),
        body: new URLSearchParams(new FormData(form)),
      });
      const body = await r.json().catch(() => ({}));
      out.textContent = body.message || body.error || 'HTTP ' + r.status;
    } catch (e) {
      out.textContent = 'The cutover was not sent: ' + e.message;
    }
    form.elements.confirm.value = '';
    form.elements.confirm.blur();
    refresh(true);
  });

  const every = Number(document.body.dataset.refreshMs) || 3000;
  setInterval(refresh, every);
})();
