"""The run file: creation, parallel writing (`writer`), verified reading (`reader`)
and the writer's lock (`lock`).  Knows no engine: it stores the rows it is given."""
