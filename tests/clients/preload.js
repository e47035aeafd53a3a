// Loaded with `node -r ./preload.js`: points remove.bg's npm client at another server, and
// changes nothing else. The client posts to a hard-coded https://api.remove.bg/v1.0/removebg
// through `unirest.post`; this wraps that one function so the same path goes to
// REMOVEBG_BASE_URL (for example http://127.0.0.1:3000). The client's own copy of unirest is
// the one wrapped: it is resolved from the client's folder, as the client resolves it.
"use strict";
const path = require("path");

const REMOVE_BG = "https://api.remove.bg";
const base = process.env.REMOVEBG_BASE_URL;
if (!base) {
  throw new Error("REMOVEBG_BASE_URL is not set");
}
const client = path.dirname(require.resolve("remove.bg"));
const unirest = require(require.resolve("unirest", { paths: [client] }));
const post = unirest.post;
unirest.post = function (url, ...rest) {
  const target = url.startsWith(REMOVE_BG) ? base + url.slice(REMOVE_BG.length) : url;
  return post.call(this, target, ...rest);
};
