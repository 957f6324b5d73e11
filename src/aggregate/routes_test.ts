import assert from "node:assert/strict";
import { isIdSegment, normaliseRoute } from "./routes.ts";

Deno.test("normaliseRoute strips the query string and fragment", () => {
  assert.equal(normaliseRoute("/users?id=1&x=2", []), "/users");
  assert.equal(normaliseRoute("/docs#intro", []), "/docs");
  assert.equal(normaliseRoute("/search?q=/a/b#c", []), "/search");
});

Deno.test("normaliseRoute replaces id-like segments with *", () => {
  const cases: [string, string][] = [
    ["/users/42/orders", "/users/*/orders"],
    ["/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/orders/*"],
    ["/commits/9f86d081", "/commits/*"],
    ["/blobs/DEADBEEF00", "/blobs/*"],
    ["/sessions/sess_a1b2c3d4e5f6g7h8", "/sessions/*"],
    ["/users/42/", "/users/*/"],
    ["/a/1/b/2/c/3", "/a/*/b/*/c/*"],
  ];
  for (const [path, route] of cases) {
    assert.equal(normaliseRoute(path, []), route, path);
  }
});

Deno.test("normaliseRoute keeps name-like segments", () => {
  const kept = [
    "/api/v2/users",
    "/facade",
    "/categories/electronics-and-gadgets",
    "/health",
    "/",
    "/static/app.js",
    "/2fa",
  ];
  for (const path of kept) assert.equal(normaliseRoute(path, []), path, path);
  assert.equal(normaliseRoute("", []), "");
  assert.equal(normaliseRoute("?only=query", []), "");
});

Deno.test("normaliseRoute: configured patterns win, first match first", () => {
  const patterns = [
    "/api/v1/users/:id",
    "/api/v1/users/:id/orders/:order",
    "/static/*",
    "/api/*",
  ];
  assert.equal(
    normaliseRoute("/api/v1/users/42", patterns),
    "/api/v1/users/:id",
  );
  assert.equal(
    normaliseRoute("/api/v1/users/alice?x=1", patterns),
    "/api/v1/users/:id",
  );
  assert.equal(
    normaliseRoute("/api/v1/users/42/", patterns),
    "/api/v1/users/:id",
  );
  assert.equal(
    normaliseRoute("/api/v1/users/42/orders/7", patterns),
    "/api/v1/users/:id/orders/:order",
  );
  assert.equal(normaliseRoute("/static/js/app.123.js", patterns), "/static/*");
  assert.equal(normaliseRoute("/static", patterns), "/static/*");
  assert.equal(normaliseRoute("/api/v2/things/9", patterns), "/api/*");
  // No pattern matches: the heuristics apply.
  assert.equal(normaliseRoute("/shop/items/12", patterns), "/shop/items/*");
  // ":id" needs a non-empty segment.
  assert.equal(
    normaliseRoute("/api/v1/users//", ["/api/v1/users/:id"]),
    "/api/v1/users//",
  );
});

Deno.test("isIdSegment", () => {
  assert.equal(isIdSegment("123"), true);
  assert.equal(isIdSegment("abcdef12"), true);
  assert.equal(isIdSegment("abcdef1"), false);
  assert.equal(isIdSegment("v1"), false);
  assert.equal(isIdSegment("users"), false);
  assert.equal(isIdSegment("123e4567-e89b-12d3-a456-426614174000"), true);
  assert.equal(isIdSegment("123e4567-e89b-12d3-a456-42661417400z"), true); // digit, > 16
  assert.equal(isIdSegment("a-very-long-segment-name"), false);
  assert.equal(isIdSegment(""), false);
});
