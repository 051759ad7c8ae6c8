// Reads flags from a kernel over OFREP with the OpenFeature server SDK and
// its OFREP provider, as an application would, for flags_kernel_test.cpp.
//   node ofrep_client.mjs --url http://127.0.0.1:PORT --token TOKEN \
//        --evaluate '[{"key": "a", "type": "boolean", "default": false}, ...]'
// Prints one JSON line: {"results": [{"key", "type", "value", "reason",
// "variant", "errorCode", "errorMessage", "flagMetadata"}, ...]}, one per
// evaluation in order (type: boolean, string, number or object).
// Packages: package.json and its lockfile here, installed by
// dist/setup.sh test (npm ci).
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`ofrep_client: ${name} is required`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const url = arg('--url');
const token = arg('--token');
const evaluations = JSON.parse(arg('--evaluate'));

await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl: url, headers: [['Authorization', `Bearer ${token}`]] }),
);
const client = OpenFeature.getClient();
const context = { targetingKey: 'user-1', tenant: 'tenant:acme' };
const methods = {
  boolean: (k, d) => client.getBooleanDetails(k, d, context),
  string: (k, d) => client.getStringDetails(k, d, context),
  number: (k, d) => client.getNumberDetails(k, d, context),
  object: (k, d) => client.getObjectDetails(k, d, context),
};
const results = [];
for (const e of evaluations) {
  const method = methods[e.type];
  if (!method) {
    console.error(`ofrep_client: unknown type ${e.type}`);
    process.exit(2);
  }
  const d = await method(e.key, e.default);
  results.push({
    key: e.key,
    type: e.type,
    value: d.value,
    reason: d.reason ?? null,
    variant: d.variant ?? null,
    errorCode: d.errorCode ?? null,
    errorMessage: d.errorMessage ?? null,
    flagMetadata: d.flagMetadata ?? {},
  });
}
console.log(JSON.stringify({ results }));
await OpenFeature.close();
