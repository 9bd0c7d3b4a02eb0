"""The paper-against-reproduction report (rule fidelity)."""

from pathlib import Path

from trainmap.fidelity import Context, evaluate, markdown, read_claims, table_hashes
from trainmap.jobs import job
from trainmap.tables import atomic_output, write_table

with job(snakemake) as log:
    smk = snakemake
    context = Context(
        root=Path("results"),
        scale=smk.params.scale,
        thresholds=smk.params.thresholds,
        blog=smk.params.blog,
        sandbox=smk.params.sandbox,
        seeds=smk.params.seeds,
    )
    claims = read_claims(smk.input.claims, smk.input.schema)
    log.info("claims file %s, sha256 %s", smk.input.claims, claims.sha256)
    table = evaluate(claims.claims, context, claims.seeds_used)
    log.info("claims:\n%s", table[["id", "status", "reproduced"]].to_string(index=False))
    write_table(table, smk.output.csv)
    text = markdown(table, f"Papers against this run (scale: {smk.params.scale})", claims.sha256)
    text += "\n" + table_hashes(f for f in smk.input if f.startswith("results/"))
    with atomic_output(smk.output.md) as tmp:
        tmp.write_text(text + "\n")
