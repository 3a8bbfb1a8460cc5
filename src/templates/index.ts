export { parseTemplate, SECRET_NAME_RE, type Expr, type Segment } from "./parse.js";
export { type RenderScope } from "./render.js";
export { compileTemplate, renderRequest, type CompiledTemplate, type RenderedRequest, type RequestTemplateDef, type HttpMethod } from "./request.js";
