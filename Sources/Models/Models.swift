// Module Models (see docs/ARCHITECTURE.md, "Targets"): safetensors reading, diffusers
// folder loading, the CLIP tokenizer and text encoder, UNet2DConditionModel and AutoencoderKL.
//
// Entry points:
// - `StableDiffusionModel(directory:)` loads a whole diffusers folder;
// - `CLIPTokenizer`, `CLIPTextEncoder`, `UNet`, `VAE` load or build (`randomWeights`) one component;
// - `SafeTensorsFile` reads and validates a checkpoint file.
