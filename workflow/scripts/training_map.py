"""The training map's edges (feature importance, mean changes, runs) and nodes (training_map)."""

import pandas as pd

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.training_map import edge_table, node_table
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    states = pd.read_parquet(smk.input.states)
    convergence = pd.read_csv(smk.input.convergence)
    edges = edge_table(
        states,
        pd.read_parquet(smk.input.zscores),
        HMMParams.load(smk.input.model),
        None if convergence.empty else convergence,
        top=smk.params.top,
    )
    write_table(edges, smk.output.edges)
    write_table(edges.drop(columns=["label", "run_ids"]), smk.output.edges_md)
    write_table(node_table(states), smk.output.nodes)
