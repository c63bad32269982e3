// The official openai npm client against mmx serve: embeddings.create with its defaults (it asks for
// base64 and decodes it) and with encoding_format "float" give the same vectors; images.generate returns a
// PNG whose embedded A1111 parameters are the request's.
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

// images.generate: a PNG that decodes, whose A1111 parameters text is the request's.
function pngText(bytes) {  // the uncompressed tEXt / iTXt chunks of a PNG: keyword → text
  const out = {};
  if (bytes.readUInt32BE(0) !== 0x89504e47) throw new Error("not a PNG");
  for (let at = 8; at < bytes.length;) {
    const length = bytes.readUInt32BE(at), type = bytes.toString("latin1", at + 4, at + 8);
    const body = bytes.subarray(at + 8, at + 8 + length), zero = body.indexOf(0);
    if (type === "tEXt") out[body.toString("latin1", 0, zero)] = body.toString("latin1", zero + 1);
    if (type === "iTXt" && body[zero + 1] === 0) {  // keyword, compression flag 0, method, language, translated keyword, text
      const language = body.indexOf(0, zero + 3), translated = body.indexOf(0, language + 1);
      out[body.toString("latin1", 0, zero)] = body.toString("utf8", translated + 1);
    }
    if (type === "IEND") { out.__complete = true; break; }
    at += 12 + length;
  }
  return out;
}
const image = await client.images.generate({ model: "sdxl", prompt: "a lighthouse at dusk", n: 1, size: "64x64",
  response_format: "b64_json", steps: 3, seed: 42, guidance: 6, sampler: "DPM++ 2M", negative_prompt: "fog" });
const png = Buffer.from(image.data[0].b64_json, "base64");
const text = pngText(png);
const expected = "a lighthouse at dusk\nNegative prompt: fog\nSteps: 3, Sampler: DPM++ 2M, CFG scale: 6, Seed: 42, Size: 64x64, Model: sdxl";
const parametersMatch = text.parameters === expected && text.__complete === true && png.readUInt32BE(16) === 64 && png.readUInt32BE(20) === 64;
console.log("images.generate:", png.length, "bytes,", png.readUInt32BE(16) + "x" + png.readUInt32BE(20), "parameters:", JSON.stringify(text.parameters),
  parametersMatch ? "(match)" : "(MISMATCH)");
process.exit(same && parametersMatch ? 0 : 1);
