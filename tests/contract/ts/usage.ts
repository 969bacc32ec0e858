// How a TypeScript service drives the API with the generated types (openapi-typescript) and openapi-fetch:
// what may be asked for, train and wait, draw samples, download one, read the event log page by page (with the
// stages' previews), list a model's jobs, delete an image, handle problems.
// tests/contract/test_contract_typescript.py compiles it with `tsc --strict` against the live document.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema";

type Schemas = components["schemas"];
export type ModelRead = Schemas["ModelRead"];
export type JobRead = Schemas["JobRead"];
export type SampleRead = Schemas["SampleRead"];
export type JobEventRead = Schemas["JobEventRead"];
export type Problem = Schemas["Problem"];
export type VocabularyRead = Schemas["VocabularyRead"];
export type ImageInfo = Schemas["ImageInfo"];

// Closed sets are unions of literals, not `string`: a misspelt state or event type does not compile.
type IsClosed<T> = string extends T ? false : true;
const closedSets: [
  IsClosed<JobRead["kind"]>,
  IsClosed<JobRead["state"]>,
  IsClosed<JobEventRead["type"]>,
  IsClosed<ModelRead["webhook_events"][number]>,
  IsClosed<VocabularyRead["job_kinds"][number]>,
  IsClosed<VocabularyRead["modes"][number]["name"]>,
] = [true, true, true, true, true, true];

// One cursor type: the `next_cursor` of a page is what `after` takes.
type Cursor = NonNullable<Schemas["Page_JobEventRead_"]["next_cursor"]>;
type After = NonNullable<NonNullable<paths["/v1/jobs/{job_id}/events"]["get"]["parameters"]["query"]>["after"]>;
const cursorFits: Cursor extends After ? true : false = true;

export function connect(baseUrl: string, apiKey: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
}
export type Api = ReturnType<typeof connect>;

export class ProblemError extends Error {
  constructor(
    readonly problem: Problem,
    readonly retryAfterS: number | null,
  ) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
  }
}

function problem(error: Problem, response: Response): ProblemError {
  const retryAfter = response.headers.get("Retry-After");
  return new ProblemError(error, retryAfter === null ? null : Number(retryAfter));
}

// A multipart form: files as they are, lists as repeated fields, the rest as text.
function multipart(body: object): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(body)) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      form.append(name, item instanceof Blob ? item : String(item));
    }
  }
  return form;
}

export async function vocabulary(api: Api): Promise<VocabularyRead> {
  const { data, error, response } = await api.GET("/v1/vocabulary");
  if (error) throw problem(error, response);
  return data;
}

// The size the model would see an image at, before uploading it.
export async function topStage(api: Api, width: number, height: number): Promise<ImageInfo> {
  const { data, error, response } = await api.GET("/v1/pyramid", {
    params: { query: { width, height, preset: "quick", train_stages: 2 } },
  });
  if (error) throw problem(error, response);
  return data.top;
}

export async function trainAndWait(api: Api, image: Blob): Promise<ModelRead> {
  const { data, error, response } = await api.POST("/v1/models", {
    params: { header: { Prefer: "wait=60", "Idempotency-Key": "train-scene-1" } },
    body: { image, preset: "quick", train_stages: 2, iters_per_stage: 3, webhook_events: ["model.succeeded"] },
    bodySerializer: multipart,
  });
  if (error) throw problem(error, response);
  if (response.status === 202) console.log(`still ${data.state}; follow ${response.headers.get("Location")}`);
  return data; // 200 and 202 are both the model
}

export async function drawSamples(api: Api, model: ModelRead, n: number): Promise<SampleRead[]> {
  const { data, error, response } = await api.POST("/v1/models/{model_id}/samples", {
    params: { path: { model_id: model.id }, header: { Prefer: "wait=30" } },
    body: { n, seed: 1 },
  });
  if (error) throw problem(error, response);
  const job: JobRead = data;
  if (job.kind !== "sample") throw new Error(`a ${job.kind} job`);
  return job.state === "succeeded" ? (job.samples ?? []) : [];
}

export async function listSamples(api: Api, modelId: string): Promise<SampleRead[]> {
  const samples: SampleRead[] = [];
  let after: string | undefined;
  for (;;) {
    const { data, error, response } = await api.GET("/v1/models/{model_id}/samples", {
      params: { path: { model_id: modelId }, query: { limit: 20, after } },
    });
    if (error) throw problem(error, response);
    samples.push(...data.data);
    if (!data.next_cursor) return samples;
    after = data.next_cursor;
  }
}

export async function downloadSample(api: Api, sample: SampleRead): Promise<Blob> {
  const { data, error, response } = await api.GET("/v1/models/{model_id}/samples/{sample_id}/content", {
    params: { path: { model_id: sample.model_id, sample_id: sample.id } },
    parseAs: "blob", // fetch follows the 307 to object storage
  });
  if (error) throw problem(error, response);
  return data;
}

export async function eventLog(api: Api, jobId: string): Promise<JobEventRead[]> {
  const events: JobEventRead[] = [];
  let after: Cursor | undefined;
  for (;;) {
    const { data, error, response } = await api.GET("/v1/jobs/{job_id}/events", {
      params: { path: { job_id: jobId }, query: { limit: 50, after } },
    });
    if (error) throw problem(error, response);
    events.push(...data.data);
    if (data.next_cursor === null || data.next_cursor === undefined) return events;
    after = data.next_cursor;
  }
}

// What the model drew after each stage of its training, as its `stage_done` events link it.
export function stagePreviews(events: JobEventRead[]): string[] {
  return events.flatMap((event) => (event.type === "stage_done" && event.links?.preview ? [event.links.preview] : []));
}

export async function downloadInput(api: Api, model: ModelRead): Promise<Blob> {
  const { data, error, response } = await api.GET("/v1/models/{model_id}/input", {
    params: { path: { model_id: model.id } },
    parseAs: "blob",
  });
  if (error) throw problem(error, response);
  return data;
}

export async function finishedSampleJobs(api: Api, modelId: string): Promise<JobRead[]> {
  const { data, error, response } = await api.GET("/v1/jobs", {
    params: { query: { model_id: modelId, kind: "sample", state: "succeeded", limit: 20 } },
  });
  if (error) throw problem(error, response);
  return data.data;
}

export async function deleteSample(api: Api, sample: SampleRead): Promise<void> {
  const { error, response } = await api.DELETE("/v1/models/{model_id}/samples/{sample_id}", {
    params: { path: { model_id: sample.model_id, sample_id: sample.id } },
  });
  if (error) throw problem(error, response);
}

export function describe(event: JobEventRead): string {
  switch (event.type) {
    case "queued":
    case "started":
    case "requeued":
    case "given_back":
      return `${event.type}: ${event.message}`;
    case "progress":
    case "stage_done":
      return `${event.type} ${JSON.stringify(event.data)}`;
    case "succeeded":
    case "failed":
    case "canceled":
    case "cancel_requested":
      return event.type;
  }
}

export async function main(image: Blob): Promise<void> {
  const api = connect("http://127.0.0.1:8000", "sk_example");
  try {
    const known = await vocabulary(api);
    if (!known.job_kinds.includes("sample")) throw new Error("this service draws no samples");
    console.log("the model would see", await topStage(api, 1024, 768));
    const model = await trainAndWait(api, image);
    console.log((await downloadInput(api, model)).size, "bytes uploaded");
    const drawn = await drawSamples(api, model, 2);
    const everything = await listSamples(api, model.id);
    const first = drawn[0] ?? everything[0];
    if (first) console.log((await downloadSample(api, first)).size, "bytes");
    if (model.train_job_id) {
      const events = await eventLog(api, model.train_job_id);
      events.map(describe).forEach((line) => console.log(line));
      console.log("stage previews:", stagePreviews(events));
    }
    console.log((await finishedSampleJobs(api, model.id)).length, "sample jobs");
    if (first) await deleteSample(api, first);
  } catch (e) {
    if (e instanceof ProblemError && e.retryAfterS !== null) console.log(`retry in ${e.retryAfterS} s`);
    else throw e;
  }
  console.log(closedSets, cursorFits);
}
