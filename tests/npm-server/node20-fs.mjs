// Node 20 lacks fs.globSync (added in Node 22), which the conformance suite imports by name for
// its tier report only; server scenarios never call it. This resolve hook hands the suite's
// `fs` an export of that name, so it loads on the Node 20 that Debian bookworm / nodesource ship.
// Used as: node --import ./node20-fs.mjs node_modules/.bin/conformance ...
import * as fs from "node:fs";
import { register } from "node:module";

if (typeof fs.globSync !== "function") {
  const shim =
    'export * from "node:fs"; export { default } from "node:fs";' +
    'export function globSync() { throw new Error("fs.globSync needs Node 22 or later"); }';
  const hooks =
    `const shim = ${JSON.stringify("data:text/javascript," + encodeURIComponent(shim))};` +
    'export async function resolve(specifier, context, next) {' +
    '  if ((specifier === "fs" || specifier === "node:fs") && context.parentURL?.includes("/conformance/"))' +
    '    return { url: shim, shortCircuit: true };' +
    '  return next(specifier, context);' +
    '}';
  register("data:text/javascript," + encodeURIComponent(hooks));
}
