// A small typed client over the generated operations. It is written to compile only when the
// generated types are right: sizes are numbers, instants are strings `Date` parses, and every
// error code is handled by name, so a new, removed or misspelled code fails `tsc --strict`.
import {
  AddConversationsDocument,
  ConversationsDocument,
  CreateTrainingFileDocument,
  DownloadUrlDocument,
  ListTrainingFilesDocument,
  NodeDocument,
  type DownloadErrorCode,
  type TrainingFileErrorCode,
  type TypedDocumentString,
} from "./generated/graphql";

type GraphQLResponse<T> = { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };

export async function execute<TResult, TVariables>(
  endpoint: string,
  token: string,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
): Promise<TResult> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json()) as GraphQLResponse<TResult>;
  if (body.errors !== undefined || body.data === undefined) {
    const first = body.errors?.[0];
    throw new Error(`${first?.extensions?.code ?? response.status}: ${first?.message ?? "no data"}`);
  }
  return body.data;
}

// Exhaustive: a code added to the schema leaves `code` not `never` in the default branch.
export function trainingFileAdvice(code: TrainingFileErrorCode): string {
  switch (code) {
    case "INVALID_NAME":
    case "INVALID_DESCRIPTION":
    case "INVALID_ID":
    case "BAD_USER_INPUT":
      return "fix the input";
    case "NAME_TAKEN":
      return "choose another name";
    case "ID_TAKEN":
      return "choose another id, or none";
    case "NO_CONVERSATIONS":
    case "TOO_MANY_CONVERSATIONS":
    case "DUPLICATE_IN_REQUEST":
      return "send 1–80 distinct conversation ids";
    case "NOT_FOUND":
    case "NOT_ELIGIBLE":
    case "ALREADY_IN_FILE":
    case "NOT_IN_FILE":
      return "pick other conversations";
    case "WOULD_BE_EMPTY":
      return "keep at least one conversation, or delete the file";
    case "FILE_NOT_ACTIVE":
      return "restore the file first";
    case "CONVERSATION_CHANGED":
    case "CONFLICT":
      return "try again";
    default: {
      const unhandled: never = code;
      return unhandled;
    }
  }
}

export function downloadAdvice(code: DownloadErrorCode): string {
  switch (code) {
    case "BAD_USER_INPUT":
    case "INVALID_ID":
      return "fix the input";
    case "NOT_FOUND":
      return "no such training file";
    case "NOT_READY":
      return "try the other format";
    default: {
      const unhandled: never = code;
      return unhandled;
    }
  }
}

export async function buildAndDownload(endpoint: string, token: string): Promise<string> {
  const listed = await execute(endpoint, token, ConversationsDocument, {
    filter: { personaKey: "anxious_planner", minQuality: 3.5, eligibleOnly: true },
    first: 5,
  });
  const ids: string[] = listed.conversations.edges.map((edge) => edge.node.id);
  const firstSeen: Date | null =
    listed.conversations.edges[0] === undefined
      ? null
      : new Date(listed.conversations.edges[0].node.createdAt);

  const created = await execute(endpoint, token, CreateTrainingFileDocument, {
    input: { name: "anxious planners, high quality", conversationIds: ids.slice(0, 3) },
  });
  const file = created.createTrainingFile.trainingFile;
  if (file === null) {
    return created.createTrainingFile.userErrors
      .map((e) => `${e.code}: ${trainingFileAdvice(e.code)} (${e.conversationIds.join(", ")})`)
      .join("\n");
  }
  const size: number = file.jsonlFileSize ?? 0;
  const createdAt: Date = new Date(file.createdAt);

  const added = await execute(endpoint, token, AddConversationsDocument, {
    input: { trainingFileId: file.id, conversationIds: ids.slice(3) },
  });
  const average: number | null =
    added.addConversations.trainingFile?.qualitySummary.average ?? null;

  const link = await execute(endpoint, token, DownloadUrlDocument, {
    input: { trainingFileId: file.id, format: "JSONL" },
  });
  const { url, expiresAt, userErrors } = link.downloadUrl;
  if (url === null || expiresAt === null) {
    return userErrors.map((e) => downloadAdvice(e.code)).join("\n");
  }
  const expires: Date = new Date(expiresAt);
  const seconds: number = (expires.getTime() - createdAt.getTime()) / 1000;
  return `${url} (${size} bytes, average ${average ?? "-"}, valid ~${seconds} s, ${firstSeen})`;
}

export async function dashboard(endpoint: string, token: string): Promise<number> {
  const page = await execute(endpoint, token, ListTrainingFilesDocument, { first: 10 });
  let bytes = 0;
  for (const { node } of page.trainingFiles.edges) {
    bytes += node.jsonlFileSize ?? 0;
    const personas: number = node.scaffoldingDistribution.personas.reduce((n, p) => n + p.count, 0);
    if (personas !== node.conversationCount) {
      throw new Error(`${node.name}: ${personas} of ${node.conversationCount} conversations`);
    }
  }
  return bytes;
}

export async function refetch(endpoint: string, token: string, id: string): Promise<string> {
  const { node } = await execute(endpoint, token, NodeDocument, { id });
  switch (node?.__typename) {
    case "TrainingFile":
      return `${node.name} v${node.version}, ${node.jsonlFileSize ?? 0} bytes, ${new Date(node.updatedAt).toISOString()}`;
    case "Conversation":
      return `${node.title ?? node.id}, ${node.enrichedFileSize ?? 0} bytes`;
    case undefined:
      return "not found";
    default: {
      const unhandled: never = node;
      return unhandled;
    }
  }
}
