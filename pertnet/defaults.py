"""The method's configuration as plain values: the stages, the tuning search space, the seed.

Every entry is one network of the ensemble:
  id            name of the entry (stage_2: family digit + letter)
  architecture  family 1-8 (docs/method.md, section 3; 1-4 train on MAE, 5-8 on MRRMSE)
  weight        weight of the entry in the stage's weighted mean (docs/method.md, section 5)
  reps          independently seeded models whose median is the entry's prediction
  epochs, bs    training epochs and batch size
  lr            Adam learning rate
  emb_out       width of the label embedding
  dense_i       width of hidden Dense layer i (families 2-4, 6-8)
  dropout_i     dropout rate after hidden block i
  n_dim         number of truncated-SVD components the network predicts

The numbers are the original solution's (the author's optuna search chose them);
tests/test_config.py proves they match a copy of the original's values kept in tests/stages.json.

The command line reads them through the repository's config.py, where a CLI user may override them.
"""
SEED = 42                # base seed: row shuffle and every rep's seed derive from it
MEMORY_BUDGET_GB = 2     # what one command aims to stay under: CV trains fewer folds at once beyond it

STAGES = {
    # The one-model baseline: family 7, a single rep.
    "simple": [
        dict(id='7', architecture=7, weight=1, reps=1, epochs=141, bs=128, lr=0.005530331519967936, emb_out=48, dense_1=712, dense_2=400, dense_3=232, dense_4=216, dropout_1=0.4903998136177629, dropout_2=0.032371643764537134, dropout_3=0.11138300987168903, dropout_4=0.019885384663655765, n_dim=100),
    ],
    # Seven entries (ids 1,2,3,5,6,7,8) trained on de_train; their ensemble makes the pseudolabels.
    "stage_1": [
        dict(id='1', architecture=1, weight=0.15224443321212433, reps=10, epochs=114, bs=128, lr=0.008457844054540857, emb_out=22, n_dim=50),
        dict(id='2', architecture=2, weight=0.7152220796128623, reps=10, epochs=136, bs=64, lr=0.007787474024659863, emb_out=10, dense_1=384, dense_2=1280, dropout_1=0.4643149193312417, dropout_2=0.10101884612160547, n_dim=60),
        dict(id='3', architecture=3, weight=0.7547606691460997, reps=10, epochs=157, bs=64, lr=0.004311857150745656, emb_out=62, dense_1=560, dense_2=480, dense_3=248, dense_4=224, dropout_1=0.4359908049836846, dropout_2=0.34432694543970555, dropout_3=0.01112409967333259, dropout_4=0.23133616975077548, n_dim=119),
        dict(id='5', architecture=5, weight=0.05786285275052854, reps=10, epochs=122, bs=32, lr=0.004429076555977599, emb_out=32, n_dim=71, dropout_1=0.40604535344002984, dropout_2=0.178189970426619),
        dict(id='6', architecture=6, weight=0.9602177109190158, reps=10, epochs=112, bs=128, lr=0.009773732221901085, emb_out=60, dense_1=436, dense_2=416, n_dim=126, dropout_1=0.4024659444883379, dropout_2=0.2573940194596736),
        dict(id='7', architecture=7, weight=0.4968056740470425, reps=10, epochs=141, bs=128, lr=0.005530331519967936, emb_out=48, dense_1=712, dense_2=400, dense_3=232, dense_4=216, dropout_1=0.4903998136177629, dropout_2=0.032371643764537134, dropout_3=0.11138300987168903, dropout_4=0.019885384663655765, n_dim=100),
        dict(id='8', architecture=8, weight=0.9881673272809887, reps=10, epochs=143, bs=192, lr=0.00971858172843266, emb_out=48, dense_1=312, dense_2=344, dense_3=248, dropout_1=0.10974777738609129, dropout_2=0.10106027333885811, dropout_3=0.09775833250663657, n_dim=100),
    ],
    # Twenty entries (id = family digit + letter), all 200 epochs, trained on de_train + pseudolabels.
    "stage_2": [
        dict(id='1a', architecture=1, weight=0.039503611057797205, reps=10, epochs=200, bs=128, lr=0.008457844054540857, emb_out=22, n_dim=50),
        dict(id='2a', architecture=2, weight=0.22778329445024798, reps=10, epochs=200, bs=64, lr=0.007787474024659863, emb_out=10, dense_1=384, dense_2=1280, dropout_1=0.4643149193312417, dropout_2=0.10101884612160547, n_dim=60),
        dict(id='2b', architecture=2, weight=0.6470451053292054, reps=10, epochs=200, bs=192, lr=0.00830447680398929, emb_out=32, dense_1=284, dense_2=1424, dropout_1=0.27860934847913565, dropout_2=0.04217965884576308, n_dim=96),
        dict(id='2c', architecture=2, weight=0.14998376919294348, reps=10, epochs=200, bs=64, lr=0.006661059864181284, emb_out=22, dense_1=232, dense_2=1184, dropout_1=0.46230673331531297, dropout_2=0.24430331733550426, n_dim=61),
        dict(id='3a', architecture=3, weight=0.2417986187654036, reps=10, epochs=200, bs=64, lr=0.004311857150745656, emb_out=62, dense_1=560, dense_2=480, dense_3=248, dense_4=224, dropout_1=0.4359908049836846, dropout_2=0.34432694543970555, dropout_3=0.01112409967333259, dropout_4=0.23133616975077548, n_dim=119),
        dict(id='3b', architecture=3, weight=0.018231625997453538, reps=10, epochs=200, bs=64, lr=0.007915642160705914, emb_out=22, dense_1=504, dense_2=136, dense_3=232, dense_4=512, dropout_1=0.0072011388198520605, dropout_2=0.07781770809801486, dropout_3=0.3482776196327668, dropout_4=0.4010684312497648, n_dim=55),
        dict(id='4a', architecture=4, weight=0.0670756518443389, reps=10, epochs=200, bs=64, lr=0.005948541271442179, emb_out=46, dense_1=872, dense_2=264, dense_3=256, dropout_1=0.17543603718794346, dropout_2=0.3587657616370447, dropout_3=0.12077512068514727, n_dim=213),
        dict(id='4b', architecture=4, weight=0.45476025839087764, reps=10, epochs=200, bs=128, lr=0.006444109866334638, emb_out=62, dense_1=552, dense_2=480, dense_3=216, dropout_1=0.323390730123547, dropout_2=0.15142047240687942, dropout_3=0.034625791669279364, n_dim=104),
        dict(id='5a', architecture=5, weight=0.8953651930541969, reps=10, epochs=200, bs=32, lr=0.005430251128204367, emb_out=56, n_dim=108, dropout_1=0.02868537022302934, dropout_2=0.35808251111776157),
        dict(id='5b', architecture=5, weight=0.2341721081339142, reps=10, epochs=200, bs=192, lr=0.00528860262509972, emb_out=60, n_dim=78, dropout_1=0.2978319229273037, dropout_2=0.3236224036130246),
        dict(id='5c', architecture=5, weight=0.3780523499542964, reps=10, epochs=200, bs=32, lr=0.004429076555977599, emb_out=32, n_dim=71, dropout_1=0.40604535344002984, dropout_2=0.178189970426619),
        dict(id='6a', architecture=6, weight=0.3428728268932388, reps=10, epochs=200, bs=128, lr=0.0030468340279031702, emb_out=62, dense_1=396, dense_2=912, n_dim=144, dropout_1=0.2643057707162437, dropout_2=0.1738090239074675),
        dict(id='6b', architecture=6, weight=0.58025233963141, reps=10, epochs=200, bs=128, lr=0.009773732221901085, emb_out=60, dense_1=436, dense_2=416, n_dim=126, dropout_1=0.4024659444883379, dropout_2=0.2573940194596736),
        dict(id='6c', architecture=6, weight=0.815817039069762, reps=10, epochs=200, bs=160, lr=0.005742157072582258, emb_out=56, dense_1=504, dense_2=928, n_dim=134, dropout_1=0.26460638891781607, dropout_2=0.243272371789527),
        dict(id='7a', architecture=7, weight=0.4865022144120589, reps=10, epochs=200, bs=128, lr=0.0026256302897014814, emb_out=62, dense_1=824, dense_2=184, dense_3=208, dense_4=472, dropout_1=0.04406850232282358, dropout_2=0.051203939042409885, dropout_3=0.05926676325711479, dropout_4=0.08819762697219703, n_dim=167),
        dict(id='7b', architecture=7, weight=0.01707600530474928, reps=10, epochs=200, bs=128, lr=0.005530331519967936, emb_out=48, dense_1=712, dense_2=400, dense_3=232, dense_4=216, dropout_1=0.4903998136177629, dropout_2=0.032371643764537134, dropout_3=0.11138300987168903, dropout_4=0.019885384663655765, n_dim=100),
        dict(id='8a', architecture=8, weight=0.26623418232070073, reps=10, epochs=200, bs=192, lr=0.00971858172843266, emb_out=48, dense_1=312, dense_2=344, dense_3=248, dropout_1=0.10974777738609129, dropout_2=0.10106027333885811, dropout_3=0.09775833250663657, n_dim=100),
        dict(id='8b', architecture=8, weight=0.20727099624448486, reps=10, epochs=200, bs=192, lr=0.008078165473745607, emb_out=16, dense_1=1016, dense_2=392, dense_3=176, dropout_1=0.21410737149365255, dropout_2=0.40541433561062473, dropout_3=0.10476819447155189, n_dim=72),
        dict(id='8c', architecture=8, weight=0.47400340366957744, reps=10, epochs=200, bs=160, lr=0.005427125417330768, emb_out=36, dense_1=760, dense_2=416, dense_3=240, dropout_1=0.16485069317527304, dropout_2=0.014216669745902685, dropout_3=0.05820818430142793, n_dim=128),
        dict(id='8d', architecture=8, weight=0.6758531294442794, reps=10, epochs=200, bs=224, lr=0.0077454113093514835, emb_out=38, dense_1=856, dense_2=352, dense_3=112, dropout_1=0.058963634508929205, dropout_2=0.10928657766717247, dropout_3=0.06218368685386452, n_dim=246),
    ],
}

STAGE_NAMES = tuple(STAGES)

# `python -m tune`'s search space (the author's optuna search was never published): each
# hyperparameter as (kind, low, high, step); "dense" is every dense_i of the entry's family and
# "dropout" every dropout_i. Every value in STAGES lies on this grid. A --weights study draws each
# entry's weight from WEIGHT_RANGE.
SEARCH_SPACE = dict(
    lr=("log", 1e-3, 1e-2, None),
    emb_out=("int", 8, 64, 2),
    dense=("int", 64, 2048, 4),
    dropout=("float", 0.0, 0.5, None),
    epochs=("int", 100, 200, 1),
    bs=("int", 32, 224, 32),
    n_dim=("int", 32, 256, 1),
)
WEIGHT_RANGE = (0.0, 1.0)
# Stage 2 trains on stage 1's predictions of the test pairs (pseudolabels).
PSEUDOLABEL_SOURCE = {"stage_2": "stage_1"}
