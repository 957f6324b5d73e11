/** Renders rows as an aligned text table: numbers right, text left. */
export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  align?: "left" | "right";
}

export function renderTable<Row>(
  columns: Column<Row>[],
  rows: Row[],
  footer: Row[] = [],
): string {
  const cells = [...rows, ...footer].map((row) =>
    columns.map((column) => column.value(row))
  );
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => line[i]!.length))
  );
  const render = (line: string[]) =>
    line.map((cell, i) =>
      columns[i]!.align === "right"
        ? cell.padStart(widths[i]!)
        : cell.padEnd(widths[i]!)
    ).join("  ").trimEnd();
  const lines = [render(columns.map((column) => column.header))];
  cells.slice(0, rows.length).forEach((line) => lines.push(render(line)));
  if (footer.length > 0) {
    lines.push(widths.map((width) => "-".repeat(width)).join("  "));
    cells.slice(rows.length).forEach((line) => lines.push(render(line)));
  }
  return lines.join("\n");
}
