// The report's inline style sheet and script. The script only filters the log records and links
// mini-batch ids to them: every chart is already drawn as SVG, so the page reads without it.

export const STYLES = `
:root{--fg:#1d2430;--muted:#5f6b7a;--line:#dfe3e8;--bg:#ffffff;--panel:#f7f8fa;--bad:#c62f2f;--warn:#b8680c;--ok:#237a4a}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 28px 8px;border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:19px;margin:28px 0 8px;padding-top:8px;border-top:2px solid var(--line)}
h3{font-size:16px;margin:22px 0 6px}
h4{font-size:14px;margin:14px 0 6px}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:6px 28px;display:flex;flex-wrap:wrap;gap:4px 14px}
nav a{color:#2f6fbf;text-decoration:none}
nav a:hover{text-decoration:underline}
main{padding:0 28px 40px;max-width:1280px}
.hint{color:var(--muted);margin:4px 0}
.ok{color:var(--ok)}
.bad{color:var(--bad);font-weight:600}
.badge{display:inline-block;color:#fff;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;vertical-align:middle}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.tile{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.tile .v{font-size:17px;font-weight:600}
.tile .l{color:var(--muted);font-size:12px}
.tile.bad .v{color:var(--bad)}
.tile.warn .v{color:var(--warn)}
.reason{background:var(--panel);border-left:3px solid var(--muted);padding:6px 10px}
figure.chart{margin:10px 0 16px;border:1px solid var(--line);border-radius:6px;padding:8px 10px;background:#fff}
figure.chart figcaption{color:var(--muted);font-size:12px;margin-bottom:4px}
figure.chart.small{margin:0}
.chart-svg{width:100%;height:auto;display:block}
.chart-svg text{font:11px system-ui,sans-serif;fill:#5f6b7a}
.chart-svg text.lane{fill:#1d2430}
.chart-svg text.marker{font-weight:600}
.chart-svg .seg{cursor:pointer}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;color:var(--muted);margin-top:4px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:12px}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;white-space:nowrap}
table.num td{font-variant-numeric:tabular-nums}
table.causes td:nth-child(2){max-width:520px}
pre{background:var(--panel);border:1px solid var(--line);padding:8px;overflow:auto;max-height:420px;font-size:12px;white-space:pre-wrap;word-break:break-word}
pre.stack{max-height:260px}
details summary{cursor:pointer}
code{font-size:12px;background:var(--panel);padding:0 3px;border-radius:3px}
.pattern{color:var(--muted);font-size:12px;margin:2px 0}
.cat{font-weight:600}
.finding{border:1px solid var(--line);border-left:5px solid var(--muted);border-radius:4px;padding:8px 12px;margin:8px 0;background:#fff}
.finding.sev-error{border-left-color:var(--bad)}
.finding.sev-warning{border-left-color:var(--warn)}
.finding .sev{text-transform:uppercase;font-size:11px;font-weight:700;color:#fff;background:var(--muted);border-radius:3px;padding:1px 5px}
.finding.sev-error .sev{background:var(--bad)}
.finding.sev-warning .sev{background:var(--warn)}
.finding .f-head{font-weight:600}
.finding ul{margin:6px 0;padding-left:20px}
.finding .fix{color:#234}
.notes{background:#fff8e6;border:1px solid #f0d9a8;padding:6px 12px;border-radius:4px;margin:8px 0}
.filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.filters input[type=search]{padding:3px 6px}
button{font:inherit;font-size:12px;cursor:pointer}
button.mb-link{border:1px solid #c9d6e8;background:#eef4fb;color:#2f6fbf;border-radius:3px;padding:0 5px;font-family:ui-monospace,Menlo,Consolas,monospace}
table.logs td{font-size:12px}
table.logs td.mono{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
table.logs td.msg{white-space:pre-wrap;word-break:break-word;min-width:320px}
table.logs tr.lvl-error td.lvl{color:var(--bad);font-weight:700}
table.logs tr.lvl-warn td.lvl{color:var(--warn);font-weight:700}
table.logs .err{color:var(--bad)}
.mtable h4 small,.mtable small{color:var(--muted);font-weight:400}
`;

export const CLIENT_SCRIPT = `
(function () {
  'use strict';
  var dataEl = document.getElementById('log-data');
  var data = {};
  try { data = JSON.parse(dataEl ? dataEl.textContent : '{}') || {}; } catch (e) { data = {}; }
  var records = data.records || [];
  var levels = data.levels || [];
  var steps = data.steps || [];
  var stacks = data.stacks || [];
  var base = data.base || 0;
  var tbody = document.getElementById('log-rows');
  var countEl = document.getElementById('log-count');
  var mbInput = document.getElementById('log-mb');
  var textInput = document.getElementById('log-text');
  var stepSelect = document.getElementById('log-step');
  var moreBtn = document.getElementById('log-more');
  var clearBtn = document.getElementById('log-clear');
  var levelBoxes = Array.prototype.slice.call(document.querySelectorAll('input[data-level]'));
  if (!tbody) return;
  var PAGE = 500;
  var shown = PAGE;
  var matches = [];

  function time(ms) {
    var d = new Date(ms);
    return isNaN(d.getTime()) ? '' : d.toISOString().slice(11, 23);
  }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function row(r) {
    var tr = document.createElement('tr');
    var level = levels[r[1]] || '';
    tr.className = 'lvl-' + level;
    tr.setAttribute('data-level', level);
    cell(tr, time(base + r[0]), 'mono');
    cell(tr, level, 'lvl');
    if (steps.length > 1) cell(tr, steps[r[2]] || '');
    cell(tr, r[3] > 0 ? 'process ' + r[3] : 'main');
    var mbCell = cell(tr, '');
    if (r[4]) {
      tr.setAttribute('data-row-mb', r[4]);
      var b = document.createElement('button');
      b.className = 'mb-link';
      b.type = 'button';
      b.textContent = r[4];
      b.setAttribute('data-mb', r[4]);
      mbCell.appendChild(b);
    }
    var msg = cell(tr, r[5], 'msg');
    if (r[6]) {
      var e = document.createElement('div');
      e.className = 'err';
      e.textContent = r[6];
      msg.appendChild(e);
    }
    if (r[7] >= 0 && stacks[r[7]]) {
      var d = document.createElement('details');
      var s = document.createElement('summary');
      s.textContent = 'stack trace';
      var pre = document.createElement('pre');
      pre.className = 'stack';
      pre.textContent = stacks[r[7]];
      d.appendChild(s);
      d.appendChild(pre);
      msg.appendChild(d);
    }
    return tr;
  }
  function render() {
    var n = Math.min(shown, matches.length);
    var frag = document.createDocumentFragment();
    for (var i = 0; i < n; i++) frag.appendChild(row(matches[i]));
    tbody.textContent = '';
    tbody.appendChild(frag);
    if (countEl) {
      countEl.textContent = 'Showing ' + n + ' of ' + matches.length + ' matching records' +
        (matches.length !== records.length ? ' (' + records.length + ' in this page)' : '') + '.';
    }
    if (moreBtn) moreBtn.hidden = n >= matches.length;
  }
  function apply() {
    var allowed = {};
    levelBoxes.forEach(function (b) { if (b.checked) allowed[b.getAttribute('data-level')] = true; });
    var mb = mbInput ? mbInput.value.trim().toLowerCase() : '';
    var text = textInput ? textInput.value.trim().toLowerCase() : '';
    var step = stepSelect ? stepSelect.value : '';
    matches = [];
    for (var i = 0; i < records.length; i++) {
      var r = records[i];
      if (!allowed[levels[r[1]]]) continue;
      if (step !== '' && String(r[2]) !== step) continue;
      if (mb && String(r[4] || '').toLowerCase().indexOf(mb) < 0) continue;
      if (text && (String(r[5]) + ' ' + String(r[6] || '')).toLowerCase().indexOf(text) < 0) continue;
      matches.push(r);
    }
    shown = PAGE;
    render();
  }
  var timer = 0;
  function later() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(apply, 120);
  }
  levelBoxes.forEach(function (b) { b.addEventListener('change', apply); });
  if (mbInput) mbInput.addEventListener('input', later);
  if (textInput) textInput.addEventListener('input', later);
  if (stepSelect) stepSelect.addEventListener('change', apply);
  if (moreBtn) moreBtn.addEventListener('click', function () { shown += PAGE; render(); });
  if (clearBtn) clearBtn.addEventListener('click', function () {
    levelBoxes.forEach(function (b) { b.checked = true; });
    if (mbInput) mbInput.value = '';
    if (textInput) textInput.value = '';
    if (stepSelect) stepSelect.value = '';
    apply();
  });
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    while (t && t.nodeType === 1 && !t.getAttribute('data-mb')) t = t.parentNode;
    if (!t || t.nodeType !== 1) return;
    var id = t.getAttribute('data-mb');
    if (!id || !mbInput) return;
    ev.preventDefault();
    mbInput.value = id;
    apply();
    var logs = document.getElementById('logs');
    if (logs && logs.scrollIntoView) logs.scrollIntoView();
  });
  apply();
})();
`;
