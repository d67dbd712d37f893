// The report's inline script: it only fills and filters the log records and links mini-batch ids
// (and the headline's buttons) to them. Every chart is already drawn as SVG, so the page reads
// without it.

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
  function showLogs() {
    var logs = document.getElementById('logs');
    if (logs && logs.scrollIntoView) logs.scrollIntoView();
  }
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    while (t && t.nodeType === 1 && !t.getAttribute('data-mb') && !t.getAttribute('data-log-level')) t = t.parentNode;
    if (!t || t.nodeType !== 1) return;
    var id = t.getAttribute('data-mb');
    var level = t.getAttribute('data-log-level');
    if (id && mbInput) {
      ev.preventDefault();
      mbInput.value = id;
      apply();
      showLogs();
    } else if (level) {
      // the records of one level (of one step): the headline's "error log records"
      ev.preventDefault();
      levelBoxes.forEach(function (b) { b.checked = b.getAttribute('data-level') === level; });
      if (mbInput) mbInput.value = '';
      if (textInput) textInput.value = '';
      if (stepSelect) stepSelect.value = t.getAttribute('data-log-step') || '';
      apply();
      showLogs();
    }
  });
  apply();
})();
`;
