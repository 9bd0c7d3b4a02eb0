# placeholder


def analysis_targets():
    return []
