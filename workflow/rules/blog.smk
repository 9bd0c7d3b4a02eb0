# The blog post "How to visualize training dynamics in neural networks" (Hu et al.
# 2025) on one run of one setting (config "blog"): loss curves, PCA of per-example
# validation losses, the HMM of the analysis stage decoded on that run, a summary.
# When the run memorises and generalises is one table (phase_events.csv) that the
# curves and the summary read.


if BLOG and "convergence_threshold" not in ANALYSED.get(BLOG["setting"], {}):
    raise ValueError(
        f"config blog.setting = {BLOG['setting']!r} is not a setting or experiment with "
        f"a convergence_threshold (known: {sorted(ANALYSED)})"
    )


if BLOG:
    # What every blog figure is made from (trainmap.figures.blog2025.Label fields).
    BLOG_LABEL = {
        "title": analysed(BLOG["setting"])["title"],
        "scale": config["scale"],
        "run": BLOG["run"],
    }
    BLOG_CONVERGENCE = analysed(BLOG["setting"])["convergence_threshold"]
    BLOG_METRICS = f"results/runs/{BLOG['setting']}/metrics.parquet"
    BLOG_HMM = f"results/hmm/{BLOG['setting']}"
    BLOG_MAP = f"results/maps/{BLOG['setting']}"

    rule blog_pca:
        input:
            metrics=BLOG_METRICS,
        output:
            trajectory=f"{BLOG_DIR}/pca_trajectory.parquet",
            variance=f"{BLOG_DIR}/pca_explained_variance.csv",
            turn=f"{BLOG_DIR}/pca_turn.csv",
        log:
            "logs/blog/pca.log",
        benchmark:
            "results/benchmarks/blog/pca.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_pca.py"),
            blog=blog_params(
                "run", "examples", "components", "turn_window", "turn_min_step"
            ),
        script:
            "../scripts/blog_pca.py"

    rule blog_phases:
        input:
            metrics=BLOG_METRICS,
        output:
            f"{BLOG_DIR}/phase_events.csv",
        log:
            "logs/blog/phases.log",
        benchmark:
            "results/benchmarks/blog/phases.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_phases.py"),
            blog=blog_params("run", "memorised_acc", "generalising_acc"),
            convergence=BLOG_CONVERGENCE,
        script:
            "../scripts/blog_phases.py"

    rule blog_loss_curves:
        input:
            metrics=BLOG_METRICS,
            events=rules.blog_phases.output[0],
        output:
            loss_curve=report(
                f"{BLOG_DIR}/loss_curve.png",
                caption="../report/blog2025_loss_curve.rst",
                category=BLOG_CATEGORY,
            ),
            run_curves=report(
                f"{BLOG_DIR}/pca_loss_curve.png",
                caption="../report/blog2025_pca_loss_curve.rst",
                category=BLOG_CATEGORY,
            ),
        log:
            "logs/blog/loss_curves.log",
        benchmark:
            "results/benchmarks/blog/loss_curves.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_loss_curves.py"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_loss_curves.py"

    rule blog_pca_figures:
        input:
            trajectory=rules.blog_pca.output.trajectory,
            variance=rules.blog_pca.output.variance,
            turn=rules.blog_pca.output.turn,
        output:
            pca_html=report(
                f"{BLOG_DIR}/pca.html",
                caption="../report/blog2025_pca.rst",
                category=BLOG_CATEGORY,
            ),
            pca_png=report(
                f"{BLOG_DIR}/pca.png",
                caption="../report/blog2025_pca.rst",
                category=BLOG_CATEGORY,
            ),
            curve_html=report(
                f"{BLOG_DIR}/pca_training_curve.html",
                caption="../report/blog2025_pca_training_curve.rst",
                category=BLOG_CATEGORY,
            ),
            curve_png=report(
                f"{BLOG_DIR}/pca_training_curve.png",
                caption="../report/blog2025_pca_training_curve.rst",
                category=BLOG_CATEGORY,
            ),
        log:
            "logs/blog/pca_figures.log",
        benchmark:
            "results/benchmarks/blog/pca_figures.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_pca_figures.py"),
            blog=blog_params("examples"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_pca_figures.py"

    rule blog_hmm_figures:
        input:
            metrics=BLOG_METRICS,
            states=f"{BLOG_HMM}/states.parquet",
            model=f"{BLOG_HMM}/model.npz",
            edges=f"{BLOG_MAP}/edges.csv",
        output:
            curve_html=report(
                f"{BLOG_DIR}/hmm_training_curve.html",
                caption="../report/blog2025_hmm_training_curve.rst",
                category=BLOG_CATEGORY,
            ),
            curve_png=report(
                f"{BLOG_DIR}/hmm_training_curve.png",
                caption="../report/blog2025_hmm_training_curve.rst",
                category=BLOG_CATEGORY,
            ),
            graph=report(
                f"{BLOG_DIR}/graph.png",
                caption="../report/blog2025_graph.rst",
                category=BLOG_CATEGORY,
            ),
        log:
            "logs/blog/hmm_figures.log",
        benchmark:
            "results/benchmarks/blog/hmm_figures.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_hmm_figures.py"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_hmm_figures.py"

    rule blog_summary:
        input:
            metrics=BLOG_METRICS,
            states=f"{BLOG_HMM}/states.parquet",
            model=f"{BLOG_HMM}/model.npz",
            events=rules.blog_phases.output[0],
            variance=rules.blog_pca.output.variance,
            turn=rules.blog_pca.output.turn,
        output:
            report(
                f"{BLOG_DIR}/summary.md",
                caption="../report/blog2025_summary.rst",
                category=BLOG_CATEGORY,
            ),
        log:
            "logs/blog/summary.log",
        benchmark:
            "results/benchmarks/blog/summary.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            code=script_code("blog_summary.py"),
            blog=blog_params("examples", "coincide_tolerance"),
            label=BLOG_LABEL,
        script:
            "../scripts/blog_summary.py"
