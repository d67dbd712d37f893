// The report's inline style sheet. The toggles between two views of a chart (linear or log
// axis, overlaid or separate series) are CSS only: a checkbox and a sibling rule.

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
.badge{display:inline-block;white-space:nowrap;color:#fff;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;vertical-align:middle}
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
.chart-svg text.marker,.chart-svg text.hline-label{font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.chart-svg text.cm-count{fill:#1d2430;font-variant-numeric:tabular-nums;pointer-events:none}
.chart-svg text.cm-count.on-dark{fill:#fff}
.chart-svg text.cm-row,.chart-svg text.cm-col{fill:#1d2430}
.chart-svg text.cm-total,.chart-svg text.cm-total-head{fill:#5f6b7a;font-size:10px}
.chart-svg text.axis-label{fill:#5f6b7a;font-weight:600}
.chart-svg .cm-cell:hover{stroke:#1d2430;stroke-opacity:1;stroke-width:1.5}
.heat-wrap{overflow-x:auto}
.matrix .hint{font-size:12px}
.legend svg.sw{vertical-align:-1px;margin-right:4px}
.toggle>.toggle-box{margin:0 4px 0 0;vertical-align:-2px}
.toggle>.toggle-label{font-size:12px;color:var(--muted);cursor:pointer;user-select:none}
.toggle>.view-b{display:none}
.toggle>.toggle-box:checked~.view-a{display:none}
.toggle>.toggle-box:checked~.view-b{display:block}
.apart .cap{font-size:12px;color:var(--muted);margin-top:6px}
details.values{margin-top:4px}
details.values summary{font-size:12px;color:var(--muted)}
.badge.stopped{background:#8a94a3}
.headline{margin:16px 0 4px;border:1px solid #f0c4c4;border-left:6px solid var(--bad);border-radius:6px;background:#fff6f6;padding:10px 14px}
.headline .sentence{margin:0;font-size:15px;line-height:1.6}
.headline .what{font-weight:600}
.headline code.frame{font-size:13px}
.headline .links{margin:6px 0 0;font-size:13px}
.chart-svg text.strip-max{font-size:10px;fill:#5f6b7a;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
ul.res-findings{list-style:none;padding:0;margin:4px 0 10px}
ul.res-findings li{border-left:4px solid var(--muted);padding:2px 8px;margin:3px 0;background:var(--panel)}
ul.res-findings li.sev-error{border-left-color:var(--bad)}
ul.res-findings li.sev-warning{border-left-color:var(--warn)}
ul.res-findings .sev{text-transform:uppercase;font-size:10px;font-weight:700;color:#fff;background:var(--muted);border-radius:3px;padding:0 4px}
ul.res-findings li.sev-error .sev{background:var(--bad)}
ul.res-findings li.sev-warning .sev{background:var(--warn)}
button.log-link{border:1px solid #c9d6e8;background:#eef4fb;color:#2f6fbf;border-radius:3px;padding:1px 8px}
`;
