// The official openai npm client against mmx serve: embeddings.create with its defaults (it asks for
// base64 and decodes it) and with encoding_format "float" give the same vectors.
import OpenAI from "openai";
const port = process.argv[2];
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "sekret" });
const input = ["Cat with paint", "rock statue"];
const a = await client.embeddings.create({ model: "bert", input });
const b = await client.embeddings.create({ model: "bert", input, encoding_format: "float" });
let same = a.data.length === b.data.length;
for (let i = 0; i < a.data.length; i++)
  for (let k = 0; k < a.data[i].embedding.length; k++)
    same &&= Math.fround(a.data[i].embedding[k]) === Math.fround(b.data[i].embedding[k]);
console.log(JSON.stringify({ rows: a.data.length, dim: a.data[0].embedding.length, first: a.data[0].embedding.slice(0, 3),
  usage: a.usage, model: a.model, identical: same }));
const models = await client.models.list();
console.log("models:", models.data.map((m) => m.id).join(","));
try { await new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "wrong" }).embeddings.create({ model: "bert", input: "x" }); }
catch (e) { console.log("wrong key:", e.status, e.error?.type ?? e.message); }
process.exit(same ? 0 : 1);
