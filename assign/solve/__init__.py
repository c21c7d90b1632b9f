"""Solvers of the capacitated assignment problem (:class:`Problem` -> :class:`Solution`)."""
from assign.solve.auction import solve_auction
from assign.solve.flow import solve_flow
from assign.solve.greedy import solve_greedy
from assign.solve.hungarian import solve_hungarian
from assign.solve.problem import InfeasibleAnswer, Problem, Solution

SOLVERS = {"flow": solve_flow, "hungarian": solve_hungarian, "greedy": solve_greedy, "auction": solve_auction}

__all__ = ["SOLVERS", "InfeasibleAnswer", "Problem", "Solution", "solve_auction", "solve_flow", "solve_greedy",
           "solve_hungarian"]
