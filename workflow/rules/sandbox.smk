# The visual sandbox ("A visual case study of the training dynamics in neural
# networks"): batched training jobs under results/sandbox2025/runs/<job>/, the figures
# and the video beside them in results/sandbox2025/.


rule sandbox_train:
    input:
        init_from=sandbox_init_weights,
    output:
        log=f"{SANDBOX_RUNS}/{{job}}/log.parquet",
        weights=f"{SANDBOX_RUNS}/{{job}}/weights.npz",
    log:
        "logs/sandbox/train/{job}.log",
    benchmark:
        "results/benchmarks/sandbox/train/{job}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        **torch_params(f"{SANDBOX_RUNS}/{{job}}/resume.pt"),
        code=script_code("sandbox_train.py"),
        # As a dict: Snakemake records (and reruns on a change of) plain values only.
        spec=lambda wc: SANDBOX_JOBS[wc.job].to_dict(),
    script:
        "../scripts/sandbox_train.py"


rule sandbox_frame:
    input:
        **sandbox_runs(lambda wc: SANDBOX_FRAMES[wc.frame].experiment),
    output:
        sandbox_report("figure{frame}.png", "frames"),
    log:
        "logs/sandbox/figure{frame}.log",
    benchmark:
        "results/benchmarks/sandbox/figure{frame}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_frame.py"),
        rank=lambda wc: SANDBOX_FRAMES[wc.frame].rank,
        epoch=lambda wc: SANDBOX_FRAMES[wc.frame].epoch,
        what=lambda wc: SANDBOX_FRAMES[wc.frame].what,
        scale=config["scale"],
    script:
        "../scripts/sandbox_frame.py"


rule sandbox_video:
    input:
        **sandbox_runs(lambda wc: SANDBOX["video"]["experiment"]),
    output:
        sandbox_report("video.{format}"),
    log:
        "logs/sandbox/video_{format}.log",
    benchmark:
        "results/benchmarks/sandbox/video_{format}.tsv"
    wildcard_constraints:
        format="mp4|gif",
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_video.py"),
        video=SANDBOX["video"] if SANDBOX else {},
        scale=config["scale"],
    script:
        "../scripts/sandbox_video.py"


rule sandbox_figure5:
    input:
        **sandbox_runs("base"),
    output:
        sandbox_report("figure5.png"),
    log:
        "logs/sandbox/figure5.log",
    benchmark:
        "results/benchmarks/sandbox/figure5.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_figure5.py"),
        drops=SANDBOX["drops"] if SANDBOX else {},
        scale=config["scale"],
    script:
        "../scripts/sandbox_figure5.py"


rule sandbox_ablation:
    input:
        **sandbox_ablation_logs(),
    output:
        sandbox_report("figure{ablation_figure}.png", "ablation"),
    log:
        "logs/sandbox/figure{ablation_figure}.log",
    benchmark:
        "results/benchmarks/sandbox/figure{ablation_figure}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_ablation.py"),
        hyperparameters=SANDBOX_ABLATIONS,
        scale=config["scale"],
    script:
        "../scripts/sandbox_ablation.py"


rule sandbox_figure8:
    input:
        **sandbox_runs("base"),
    output:
        sandbox_report("figure8.png"),
    log:
        "logs/sandbox/figure8.log",
    benchmark:
        "results/benchmarks/sandbox/figure8.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_figure8.py"),
        scale=config["scale"],
    script:
        "../scripts/sandbox_figure8.py"


rule sandbox_figure9:
    input:
        transfer=sandbox_files("transfer", "log.parquet"),
        scratch=sandbox_files("scratch_p3", "log.parquet"),
    output:
        sandbox_report("figure9.png"),
    log:
        "logs/sandbox/figure9.log",
    benchmark:
        "results/benchmarks/sandbox/figure9.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_figure9.py"),
        scale=config["scale"],
    script:
        "../scripts/sandbox_figure9.py"


rule sandbox_spikes:
    input:
        **sandbox_runs("base"),
    output:
        sandbox_report("figure{spike_figure}.png", "spikes"),
    log:
        "logs/sandbox/figure{spike_figure}.log",
    benchmark:
        "results/benchmarks/sandbox/figure{spike_figure}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_spikes.py"),
        spikes=SANDBOX["spikes"] if SANDBOX else {},
        scale=config["scale"],
    script:
        "../scripts/sandbox_spikes.py"


rule sandbox_gradnorms:
    input:
        lambda wc: sandbox_files(
            SANDBOX_GRADNORMS[wc.gradnorm_figure].experiment, "log.parquet"
        ),
    output:
        sandbox_report("figure{gradnorm_figure}.png", "gradnorms"),
    log:
        "logs/sandbox/figure{gradnorm_figure}.log",
    benchmark:
        "results/benchmarks/sandbox/figure{gradnorm_figure}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_gradnorms.py"),
        batch=lambda wc: SANDBOX_GRADNORMS[wc.gradnorm_figure].batch,
        scale=config["scale"],
    script:
        "../scripts/sandbox_gradnorms.py"


rule sandbox_sparsity:
    input:
        **sandbox_runs(lambda wc: SANDBOX_SPARSITY[wc.sparsity_figure].experiment),
    output:
        sandbox_report("figure{sparsity_figure}.png", "sparsity"),
        table=f"{SANDBOX_DIR}/figure{{sparsity_figure}}_sparsity.csv",
    log:
        "logs/sandbox/figure{sparsity_figure}.log",
    benchmark:
        "results/benchmarks/sandbox/figure{sparsity_figure}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("sandbox_sparsity.py"),
        by_d=lambda wc: SANDBOX_SPARSITY[wc.sparsity_figure].by_d,
        sandbox=sandbox_params("success_threshold", "sparsity_eps"),
        scale=config["scale"],
    script:
        "../scripts/sandbox_sparsity.py"
