from frazil.model.dag import build_dag


def test_dag_of_the_simulation_shape():
    names = ["corsika", "nugen", "photons", "det_a", "det_b", "level2"]
    depends = [[], [], ["corsika", 1], ["photons"], [2], ["det_a", "det_b"]]
    dag, problems = build_dag(names, depends)
    assert problems == [] and dag is not None
    assert dag.parents == ((), (), (0, 1), (2,), (2,), (3, 4))
    assert dag.children == ((2,), (2,), (3, 4), (5,), (5,), ())
    assert dag.roots == (0, 1)
    assert dag.order == (0, 1, 2, 3, 4, 5)


def test_order_respects_dependencies_not_config_order():
    dag, _ = build_dag(["last", "first", "middle"], [["middle"], [], ["first"]])
    assert dag is not None
    assert [dag.names[i] for i in dag.order] == ["first", "middle", "last"]


def test_problems_are_located():
    _, problems = build_dag(["a", "b", "a"], [["nope"], [7, "b"], []])
    assert [(p.path, p.message) for p in problems] == [
        ("tasks[2].name", "duplicate task name 'a' (also tasks[0])"),
        ("tasks[0].depends[0]", "no task named 'nope' (tasks: a, b, a)"),
        ("tasks[1].depends[0]", "task index 7 out of range (0-2)"),
        ("tasks[1].depends[1]", "task 'b' depends on itself"),
    ]


def test_cycle_names_the_chain():
    dag, problems = build_dag(["a", "b", "c", "d"], [[], ["d"], ["b"], ["c"]])
    assert dag is None
    assert len(problems) == 1
    assert problems[0].path == "tasks[1].depends"
    assert "b -> d -> c -> b" in problems[0].message


def test_duplicate_dependencies_count_once():
    dag, _ = build_dag(["a", "b"], [[], ["a", 0, "a"]])
    assert dag is not None and dag.parents[1] == (0,)


def test_long_chain_has_no_recursion_limit():
    n = 5000
    names = [f"t{i}" for i in range(n)]
    depends = [[] if i == 0 else [i - 1] for i in range(n)]
    dag, _ = build_dag(names, depends)
    assert dag is not None and dag.order == tuple(range(n))
    depends[0] = [n - 1]
    dag, problems = build_dag(names, depends)
    assert dag is None and "dependency cycle" in problems[0].message
