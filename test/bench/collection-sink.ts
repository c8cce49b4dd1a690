// A minimal OTLP/gRPC sink for the collection benchmark, run as its own process so its CPU is not the agent's: it
// answers every Export with an empty success and counts the bytes it received. Prints its port, then runs until killed.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

let bytes = 0;
let exports = 0;
const server = http2.createServer();
server.on('stream', (stream) => {
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  stream.on('end', () => {
    exports++;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.alloc(5)); // an empty ExportMetricsServiceResponse
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
});
process.on('SIGTERM', () => {
  console.log(JSON.stringify({ bytes, exports }));
  process.exit(0);
});
