/** `.wasm` imports, as workerd and bundlers with a compiled-Wasm rule provide them. */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
