// A minimal Node.js Lambda runtime loop (what a `nodejs20.x` function's handler would do on its
// first event), for the cold-start comparison: the sweep's first step on an empty table, i.e.
// the Toss key preflight (GET /v1/payments/orders/preflight-key-check) and one Query per shard
// of the due index, with the AWS SDK for JavaScript v3, exactly as the Rust sweep does it.
import { Buffer } from 'node:buffer';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const ddb = new DynamoDBClient({ endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB });
const tossBase = process.env.TOSS_API_BASE;
const authorization = 'Basic ' + Buffer.from(`${process.env.TOSS_SECRET_KEY}:`).toString('base64');
const table = process.env.TABLE_NAME;

async function handler(event) {
  const preflight = await fetch(`${tossBase}/v1/payments/orders/preflight-key-check`, {
    headers: { authorization },
  });
  await preflight.text();
  if (preflight.status !== 404 && !preflight.ok) throw new Error(`Toss preflight: ${preflight.status}`);
  const pages = await Promise.all(
    Array.from({ length: 16 }, (_, shard) =>
      ddb.send(
        new QueryCommand({
          TableName: table,
          IndexName: 'due',
          KeyConditionExpression: 'due_pk = :shard AND due_at <= :as_of',
          ExpressionAttributeValues: {
            ':shard': { S: `DUE#${String(shard).padStart(2, '0')}` },
            ':as_of': { S: event.time },
          },
          Limit: 100,
        }),
      ),
    ),
  );
  return { due: pages.reduce((n, p) => n + (p.Items?.length ?? 0), 0) };
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const id = next.headers.get('lambda-runtime-aws-request-id');
  const event = await next.json();
  try {
    const result = await handler(event);
    await fetch(`${api}/invocation/${id}/response`, { method: 'POST', body: JSON.stringify(result) });
  } catch (e) {
    await fetch(`${api}/invocation/${id}/error`, {
      method: 'POST',
      body: JSON.stringify({ errorType: e.name, errorMessage: e.message }),
    });
  }
}
