/**
 * How the kafkajs adapter tells errors apart: a lost connection (reconnect), a retriable
 * transaction error (retry the request), a fatal one (fail). Shared by the patches, the source
 * and the producer.
 */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Errors after which a transaction cannot go on: this producer was fenced (another one with the
 * same transactional id started, or the broker aborted the transaction on its timeout), or it is
 * not allowed. Everything else that kafkajs marks retriable, or a lost connection, is retried.
 */
const FATAL_TXN_TYPES = new Set([
  'INVALID_PRODUCER_EPOCH', 'INVALID_TXN_STATE', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'TRANSACTION_COORDINATOR_FENCED', 'INVALID_TRANSACTION_TIMEOUT', 'GROUP_AUTHORIZATION_FAILED', 'TOPIC_AUTHORIZATION_FAILED',
  'KAFKAJS_UNKNOWN_ERROR_CODE', // 90 PRODUCER_FENCED and other codes kafkajs 2.2.4 does not know
]);


export function isRetriableTxnError(e: unknown): boolean {
  let retriable = false;
  for (let x: unknown = e, d = 0; x && d < 8; d++) {
    const t = (x as { type?: string }).type;
    if (t && FATAL_TXN_TYPES.has(t)) return false;
    if ((x as { retriable?: boolean }).retriable === true || (x as Error).name === 'KafkaJSNumberOfRetriesExceeded') retriable = true;
    const next = (x as { cause?: unknown; originalError?: unknown }).cause ?? (x as { originalError?: unknown }).originalError;
    if (!next || next === x) break;
    x = next;
  }
  return retriable || isConnectivityError(e);
}

/**
 * The error type by which the group coordinator says a member is out of the generation it named
 * (evicted: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID — code 82, which kafkajs may
 * not know by name), anywhere in the cause chain; null for anything else.
 */
export function evictionOf(e: unknown): string | null {
  for (let x: unknown = e, d = 0; x && d < 8; d++) {
    const t = (x as { type?: string }).type;
    if (t === 'ILLEGAL_GENERATION' || t === 'UNKNOWN_MEMBER_ID' || t === 'FENCED_INSTANCE_ID') return t;
    if ((x as { code?: unknown }).code === 82) return 'FENCED_INSTANCE_ID';
    const next = (x as { cause?: unknown; originalError?: unknown }).cause ?? (x as { originalError?: unknown }).originalError;
    if (!next || next === x) break;
    x = next;
  }
  return null;
}

/** A lost or refused connection (worth reconnecting), as opposed to a protocol or usage error. */
export function isConnectivityError(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x && depth < 6; x = (x as { cause?: unknown; originalError?: unknown }).cause ?? (x as { originalError?: unknown }).originalError, depth++) {
    const name = (x as Error).name ?? '', msg = (x as Error).message ?? '';
    if (/KafkaJSConnection(Closed)?Error|KafkaJSBrokerNotFound|KafkaJSNumberOfRetriesExceeded|KafkaJSRequestTimeoutError|KafkaJSNoBrokerAvailableError/.test(name)) return true;
    if (/ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Connection (error|timeout)|Closed connection|not (the correct )?coordinator|coordinator is (loading|not available)|leader/i.test(msg)) return true;
  }
  return false;
}

/**
 * A consumer crash worth a fresh consumer: lost connections, plus what kafkajs itself would have
 * restarted (retries exhausted, a retriable root cause) and "Failed to find group coordinator",
 * which kafkajs throws as non-retriable, without a cause, when no broker answered FindCoordinator.
 */
export function isReconnectable(e: unknown): boolean {
  if (isConnectivityError(e)) return true;
  // kafkajs's retrier wraps a bailed error as KafkaJSNonRetriableError with the original as cause
  let x: unknown = e;
  for (let d = 0; x && d < 8; d++) {
    const name = (x as Error).name ?? '';
    if (name === 'KafkaJSNumberOfRetriesExceeded' || name === 'KafkaJSGroupCoordinatorNotFound') return true;
    const next = (x as { cause?: unknown }).cause;
    if (!next || next === x) break;
    x = next;
  }
  return (x as { retriable?: boolean })?.retriable === true;
}

