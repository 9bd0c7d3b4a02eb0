# placeholder


def sandbox_targets():
    return []
