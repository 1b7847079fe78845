// The read key the benchmarked promptflag Workers are configured with (`READ_KEYS`, a client key:
// the evaluation routes are what is measured) and every request sends. The GrowthBook Workers
// ignore the header.
export const READ_KEY = "bench-client-key-0123456789abcdef0123456789";
export const READ_KEYS = JSON.stringify([{ name: "bench", key: READ_KEY, kind: "client" }]);
