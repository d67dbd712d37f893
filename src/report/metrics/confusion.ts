// Is a logged table a confusion matrix? Three shapes are recognised, as people log them:
//   pairs        two label columns, one row per prediction: logTable('confusion', { actual, predicted })
//   pairs+count  two label columns and a count:               { actual, predicted, count }
//   square       one column per predicted class and one row per actual class, with or without a
//                column naming the row:                       { label: ['cat','dog'], cat: [5, 1], dog: [2, 7] }
// Rows (logRow) are read the same way, as the columns of their table. Two label columns count as
// actual/predicted when their names say so (actual, true, label, target, y_true / predicted, pred,
// y_pred, ...), when the metric's name says "confusion", or when their labels are mostly the same.
// A square table needs a column naming its rows by the other columns' names, or a name that says
// "confusion" (or cm): three numbers of three runs are not a matrix.

export interface ConfusionMatrix {
  readonly rows: readonly string[];
  readonly cols: readonly string[];
  /** counts[row][col] */
  readonly counts: readonly (readonly number[])[];
  readonly rowTitle: string;
  readonly colTitle: string;
  readonly form: 'pairs' | 'pairs+count' | 'square';
}

export const MAX_LABELS = 50;
const ACTUAL = /^(?:actual|actuals|true|truth|ground_?truth|gold|label|labels|target|targets|expected|y|y_?true|class|true_?(?:label|class))$/i;
const PREDICTED = /^(?:pred|preds|predicted|prediction|predictions|output|guess|y_?pred|y_?hat|predicted_?(?:label|class))$/i;
const COUNT = /^(?:count|counts|n|freq|frequency|number|num|total|weight|support|value|samples)$/i;
const CONFUSION_NAME = /confusion|(?:^|[_.\-/])cm(?:$|[_.\-/])/i;

type Columns = Readonly<Record<string, readonly unknown[]>>;

function isLabel(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v));
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** Distinct labels of a column, or undefined when it is not a label column (or has too many). */
function labelsOf(values: readonly unknown[]): Set<string> | undefined {
  const set = new Set<string>();
  for (const v of values) {
    if (!isLabel(v)) return undefined;
    set.add(String(v));
    if (set.size > MAX_LABELS) return undefined;
  }
  return set;
}

function sortLabels(labels: Iterable<string>): string[] {
  const list = [...labels];
  if (list.every((l) => l !== '' && Number.isFinite(Number(l)))) return list.sort((a, b) => Number(a) - Number(b));
  return list.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

function looksPaired(name: string, a: string, b: string, la: Set<string>, lb: Set<string>): boolean {
  if (CONFUSION_NAME.test(name)) return true;
  if ((ACTUAL.test(a) && PREDICTED.test(b)) || (PREDICTED.test(a) && ACTUAL.test(b))) return true;
  let shared = 0;
  for (const l of la) if (lb.has(l)) shared++;
  return shared >= 2 && shared >= 0.5 * Math.min(la.size, lb.size);
}

function fromPairs(name: string, columns: Columns, a: string, b: string, countCol?: string): ConfusionMatrix | undefined {
  const va = columns[a]!;
  const vb = columns[b]!;
  const la = labelsOf(va);
  const lb = labelsOf(vb);
  if (!la || !lb || !looksPaired(name, a, b, la, lb)) return undefined;
  // the actual labels down the rows
  const [rowCol, colCol] = PREDICTED.test(a) && !PREDICTED.test(b) ? [b, a] : [a, b];
  const labels = sortLabels(new Set([...la, ...lb]));
  if (labels.length < 2) return undefined;
  const at = new Map(labels.map((l, k) => [l, k]));
  const counts = labels.map(() => labels.map(() => 0));
  const rows = columns[rowCol]!;
  const cols = columns[colCol]!;
  const weights = countCol ? columns[countCol]! : undefined;
  for (let r = 0; r < rows.length; r++) counts[at.get(String(rows[r]))!]![at.get(String(cols[r]))!]! += weights ? (weights[r] as number) : 1;
  return { rows: labels, cols: labels, counts, rowTitle: rowCol, colTitle: colCol, form: countCol ? 'pairs+count' : 'pairs' };
}

function fromSquare(name: string, columns: Columns, names: readonly string[], n: number): ConfusionMatrix | undefined {
  const numeric = names.filter((c) => columns[c]!.every(isCount));
  const others = names.filter((c) => !numeric.includes(c));
  if (numeric.length !== n || n < 2 || n > MAX_LABELS || others.length > 1) return undefined;
  const matrix = Array.from({ length: n }, (_, r) => numeric.map((c) => columns[c]![r] as number));
  let rows: string[];
  let rowTitle = 'actual';
  if (others.length === 1) {
    const labelCol = others[0]!;
    rows = columns[labelCol]!.map(String);
    const set = new Set(rows);
    if (set.size !== n || !numeric.every((c) => set.has(c))) return undefined;
    if (ACTUAL.test(labelCol)) rowTitle = labelCol;
  } else {
    if (!CONFUSION_NAME.test(name)) return undefined;
    rows = [...numeric];
  }
  return { rows, cols: numeric, counts: matrix, rowTitle, colTitle: 'predicted', form: 'square' };
}

/** The table (equal-length columns) as a confusion matrix, or undefined when it is not one. */
export function asConfusionMatrix(name: string, columns: Columns): ConfusionMatrix | undefined {
  const names = Object.keys(columns);
  if (names.length < 2 || !names.every((c) => Array.isArray(columns[c]))) return undefined;
  const n = columns[names[0]!]!.length;
  if (n === 0 || !names.every((c) => columns[c]!.length === n)) return undefined;
  if (names.length === 2) return fromPairs(name, columns, names[0]!, names[1]!);
  if (names.length === 3) {
    const candidates = [...names.filter((c) => COUNT.test(c)), names[2]!];
    for (const count of candidates) {
      if (!columns[count]!.every(isCount)) continue;
      const [a, b] = names.filter((c) => c !== count) as [string, string];
      const m = fromPairs(name, columns, a, b, count);
      if (m) return m;
    }
  }
  return fromSquare(name, columns, names, n);
}

/** Rows ({ actual, predicted, count } each) as the columns of one table; missing cells stay undefined. */
export function rowsToColumns(rows: readonly Readonly<Record<string, unknown>>[]): Record<string, unknown[]> {
  const cols: Record<string, unknown[]> = {};
  rows.forEach((row, r) => {
    for (const k of Object.keys(row)) (cols[k] ??= new Array(rows.length).fill(undefined))[r] = row[k];
  });
  return cols;
}
