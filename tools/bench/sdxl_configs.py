"""SDXL-family component configs (stabilityai/stable-diffusion-xl-base-1.0, segmind/SSD-1B,
segmind/Segmind-Vega; copied here so the benchmarks need no download). Only shapes matter:
the weights are random. They equal diffusiond's built-in presets (UNetConfig.sdxl / .ssd1b /
.vega). SDXL-Turbo, SDXL-Lightning and Hyper-SD checkpoints have the SDXL base UNet (Turbo's
config says sample_size 64; the shapes are the same)."""

import sd15_configs

UNET_SDXL = dict(  # stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
    sample_size=128, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=2048, attention_head_dim=(5, 10, 20), use_linear_projection=True,
    transformer_layers_per_block=(1, 2, 10), mid_block_type="UNetMidBlock2DCrossAttn",
    addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, addition_embed_type_num_heads=64,
)

UNET_SSD1B = dict(UNET_SDXL,  # segmind/SSD-1B unet/config.json
                  transformer_layers_per_block=[1, 2, 4],
                  reverse_transformer_layers_per_block=[[4, 4, 10], [2, 1, 1], 1],
                  mid_block_type="UNetMidBlock2D")

UNET_VEGA = dict(UNET_SDXL,  # segmind/Segmind-Vega unet/config.json
                 transformer_layers_per_block=[1, 1, 2],
                 reverse_transformer_layers_per_block=[[2, 2, 2], [1, 1, 1], 1],
                 mid_block_type="UNetMidBlock2D")

# stabilityai/sdxl-vae: SD's VAE shapes; only scaling_factor (0.13025) differs.
VAE_SDXL = dict(sd15_configs.VAE_SD15, sample_size=1024, scaling_factor=0.13025, force_upcast=True)

TEXT_SDXL_L = sd15_configs.TEXT_SD15  # text_encoder: CLIP ViT-L/14's text tower

TEXT_SDXL_G = dict(sd15_configs.TEXT_SD15,  # text_encoder_2: OpenCLIP ViT-bigG/14
                   hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                   num_attention_heads=20, hidden_act="gelu", projection_dim=1280)

# The pooled width SDXL's UNet expects beside the 6 time ids (2816 - 6 * 256).
POOLED_WIDTH = UNET_SDXL["projection_class_embeddings_input_dim"] - 6 * UNET_SDXL["addition_time_embed_dim"]
assert POOLED_WIDTH == TEXT_SDXL_G["projection_dim"]
