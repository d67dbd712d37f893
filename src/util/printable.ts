// Text that is safe to print: control characters (ANSI escape sequences, carriage returns, bells,
// the C1 range a terminal also obeys) from a backend's answer or a metric name are shown as
// escapes (`\x1b`, `\r`, `\n`) instead of reaching the terminal, driver.log or step.json raw.

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;
const CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

function escape(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** `text` with every control character but the tab written as an escape; the same string when it has none. */
export function printable(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROLS, escape) : text;
}
