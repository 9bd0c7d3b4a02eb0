# placeholder


def hu2023_targets():
    return []
