// One call of remove.bg's npm client, as an application would make it. The call comes as JSON
// on standard input: {"source": "file" | "base64" | "url", "options": {...}} where options are the
// client's own (apiKey, path / base64img / url, size, scale, ...). Prints one JSON line:
// {"resolved": <the client's result>} or {"rejected": <what the client rejected with>}.
"use strict";
const removeBg = require("remove.bg");

const CALLS = {
  file: removeBg.removeBackgroundFromImageFile,
  base64: removeBg.removeBackgroundFromImageBase64,
  url: removeBg.removeBackgroundFromImageUrl,
};

async function readInput() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const { source, options } = JSON.parse(await readInput());
  try {
    const result = await CALLS[source](options);
    process.stdout.write(JSON.stringify({ resolved: result }) + "\n");
  } catch (rejected) {
    process.stdout.write(JSON.stringify({ rejected: rejected === undefined ? null : rejected }) + "\n");
  }
}

main();
