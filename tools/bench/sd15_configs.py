"""Stable Diffusion component configs (runwayml/stable-diffusion-v1-5 and, for SD 2.1 and
SD-Turbo, stabilityai/stable-diffusion-2-1; copied here so the benchmarks need no download).
Only shapes matter: the weights are random. They equal diffusiond's built-in presets
(UNetConfig.sd15/.sd21, CLIPTextConfig.sd15/.sd21)."""

UNET_SD15 = dict(  # unet/config.json
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=768, attention_head_dim=8,
)

VAE_SD15 = dict(  # vae/config.json
    in_channels=3, out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, act_fn="silu",
    latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215,
)

TEXT_SD15 = dict(  # text_encoder/config.json (openai/clip-vit-large-patch14 text tower)
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, projection_dim=768, bos_token_id=0, eos_token_id=2, pad_token_id=1,
)

UNET_SD21 = dict(UNET_SD15,  # stabilityai/stable-diffusion-2-1 unet/config.json (SD-Turbo: the same)
                 sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                 use_linear_projection=True)

TEXT_SD21 = dict(TEXT_SD15,  # OpenCLIP ViT-H/14 text tower, 23 of its 24 layers
                 hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                 hidden_act="gelu", projection_dim=512)
