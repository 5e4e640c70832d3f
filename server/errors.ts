/** Typed errors the hub answers with, and small helpers for OS errors. */
import { ResponseError } from 'vscode-jsonrpc';
import { HubErrorCode } from './protocol';

export function hubError(code: HubErrorCode, message: string): ResponseError<void> {
  return new ResponseError(code, message);
}

export function notFound(name: string): ResponseError<void> {
  return hubError(HubErrorCode.NotFound, `no CI named "${name}" (see \`cihub list\`)`);
}

/** The `code` of a Node system error (`ENOENT`, `EACCES`…), if it is one. */
export function errnoCode(error: unknown): string | undefined {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** `error` as an Error (a thrown non-Error wrapped). */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
