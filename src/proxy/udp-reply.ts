/**
 * What a backend pod answers to a UDP datagram, so that whoever sent it can tell which pod it
 * reached (pure: bytes in, bytes out).
 *
 * - A DNS query (RFC 1035: a 12-byte header with QR=0, opcode QUERY, one question) is answered
 *   as an authoritative DNS response with one TXT record for the question's name:
 *   "pod=web-0" "endpoint=10.244.0.5:53". `dig @127.10.0.10 -p 53 any.name TXT` shows it.
 * - Anything else is echoed, followed by a newline and the pod's identity as JSON:
 *   `<the datagram>\n{"pod":"web-0","endpoint":"10.244.0.5:53"}`. kpsim's UDP load generator
 *   sends 8-byte datagrams (a magic word and a sequence number) and reads the identity after them.
 */

export interface PodIdentity {
  readonly pod: string;
  readonly endpoint: string;
}

const DNS_HEADER_BYTES = 12;
const DNS_TYPE_TXT = 16;
const DNS_CLASS_IN = 1;
/** The largest DNS message over UDP without EDNS. */
const DNS_UDP_LIMIT = 512;

/** The identity trailer of an echo reply: a newline, then JSON. */
export function identityTrailer(identity: PodIdentity): Buffer {
  return Buffer.from(`\n${JSON.stringify({ pod: identity.pod, endpoint: identity.endpoint })}`);
}

/** The reply to one datagram (see the file comment). */
export function udpReply(request: Buffer, identity: PodIdentity, trailer: Buffer = identityTrailer(identity)): Buffer {
  const question = dnsQuestionEnd(request);
  if (question !== undefined) {
    const answer = dnsTxtAnswer(request, question, [`pod=${identity.pod}`, `endpoint=${identity.endpoint}`]);
    if (answer !== undefined) return answer;
  }
  return Buffer.concat([request, trailer]);
}

/**
 * The offset just past the first question when `message` is a standard DNS query with exactly
 * one question; undefined otherwise.
 */
export function dnsQuestionEnd(message: Buffer): number | undefined {
  if (message.length < DNS_HEADER_BYTES + 5) return undefined;
  const flags = message.readUInt16BE(2);
  const isResponse = (flags & 0x8000) !== 0;
  const opcode = (flags >> 11) & 0xf;
  if (isResponse || opcode !== 0) return undefined;
  if (message.readUInt16BE(4) !== 1 || message.readUInt16BE(6) !== 0 || message.readUInt16BE(8) !== 0) return undefined;
  let at = DNS_HEADER_BYTES;
  // Labels: a length byte (1..63) then that many bytes, ended by a zero byte; no compression in a question.
  for (let labels = 0; ; labels++) {
    if (at >= message.length || labels > 127) return undefined;
    const length = message[at]!;
    if (length === 0) break;
    if (length > 63) return undefined;
    at += 1 + length;
  }
  at += 1 + 4; // the root label, QTYPE and QCLASS
  return at <= message.length ? at : undefined;
}

/** An authoritative response to the query's question with one TXT record holding `texts`. */
export function dnsTxtAnswer(query: Buffer, questionEnd: number, texts: readonly string[]): Buffer | undefined {
  const strings = texts.map((t) => Buffer.from(t).subarray(0, 255));
  const rdLength = strings.reduce((sum, s) => sum + 1 + s.length, 0);
  const total = questionEnd + 2 + 2 + 2 + 4 + 2 + rdLength;
  if (total > DNS_UDP_LIMIT) return undefined;
  const out = Buffer.alloc(total);
  query.copy(out, 0, 0, questionEnd);
  const recursionDesired = query.readUInt16BE(2) & 0x0100;
  // QR=1, opcode QUERY, AA=1, RD as asked, RA=0, RCODE NOERROR.
  out.writeUInt16BE(0x8000 | 0x0400 | recursionDesired, 2);
  out.writeUInt16BE(1, 4); // QDCOUNT
  out.writeUInt16BE(1, 6); // ANCOUNT
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  let at = questionEnd;
  out.writeUInt16BE(0xc000 | DNS_HEADER_BYTES, at); // the name: a pointer to the question's
  out.writeUInt16BE(DNS_TYPE_TXT, at + 2);
  out.writeUInt16BE(DNS_CLASS_IN, at + 4);
  out.writeUInt32BE(0, at + 6); // TTL 0: nothing should cache which pod answered
  out.writeUInt16BE(rdLength, at + 10);
  at += 12;
  for (const s of strings) {
    out[at] = s.length;
    s.copy(out, at + 1);
    at += 1 + s.length;
  }
  return out;
}

/** The TXT strings of the first answer of a DNS response (for tests and clients); undefined when there is none. */
export function dnsTxtStrings(response: Buffer): string[] | undefined {
  const questionEnd = dnsResponseQuestionEnd(response);
  if (questionEnd === undefined || response.readUInt16BE(6) < 1) return undefined;
  let at = questionEnd;
  if (at + 12 > response.length || (response.readUInt16BE(at) & 0xc000) !== 0xc000) return undefined;
  if (response.readUInt16BE(at + 2) !== DNS_TYPE_TXT) return undefined;
  const end = at + 12 + response.readUInt16BE(at + 10);
  at += 12;
  const out: string[] = [];
  while (at < end && end <= response.length) {
    const length = response[at]!;
    out.push(response.subarray(at + 1, at + 1 + length).toString());
    at += 1 + length;
  }
  return out;
}

function dnsResponseQuestionEnd(message: Buffer): number | undefined {
  if (message.length < DNS_HEADER_BYTES || (message.readUInt16BE(2) & 0x8000) === 0) return undefined;
  const asQuery = Buffer.from(message.subarray(0, Math.min(message.length, DNS_UDP_LIMIT)));
  asQuery.writeUInt16BE(asQuery.readUInt16BE(2) & 0x7fff, 2);
  asQuery.writeUInt16BE(0, 6);
  return dnsQuestionEnd(asQuery);
}
