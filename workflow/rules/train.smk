# placeholder


def train_targets():
    return []
