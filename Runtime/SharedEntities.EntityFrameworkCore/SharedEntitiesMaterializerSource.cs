using System.Linq.Expressions;
using System.Reflection;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Query;
using Microsoft.EntityFrameworkCore.Storage;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// Hands every shared entity a query materializes to the reads of its context (<see cref="ContextReads.Materialized"/>)
/// with the row it was made from: attached to the runtime as just read, and offered to the entity cache. It wraps the
/// provider's materializer, so only the materialization of [SharedEntity] types changes: after the instance is made,
/// one call with the instance and the row's values, read from the query's result like the instance's own (shadow
/// values included). Tracking and no-tracking queries alike.
/// </summary>
/// <remarks>
/// Not an <c>IMaterializationInterceptor</c>: with any materialization interceptor registered, EF Core gives every row
/// of every entity type a dictionary of accessor delegates created for that row: about half the CPU of an ordinary
/// query of 100 rows (docs/benchmarks.md). Stateless, one per EF Core internal service provider.
/// </remarks>
/// <param name="inner">The materializer the provider registered.</param>
internal sealed class SharedEntitiesMaterializerSource(IStructuralTypeMaterializerSource inner) : IStructuralTypeMaterializerSource
{
    private static readonly MethodInfo MaterializedMethod =
        typeof(SharedEntitiesMaterializerSource).GetMethod(nameof(Materialized), BindingFlags.NonPublic | BindingFlags.Static)!;

    public Expression CreateMaterializeExpression(StructuralTypeMaterializerSourceParameters parameters, Expression materializationContextExpression)
    {
        Expression materialize = inner.CreateMaterializeExpression(parameters, materializationContextExpression);
        if (parameters.StructuralType is not IEntityType entityType || SharedEntityConvention.SharedTypeOf(entityType.ClrType) is null)
        {
            return materialize;
        }

        // instance = <the provider's materialization>; Materialized(context, mapping, instance, new object[] { <each property's value> });
        CachedRowMapping mapping = CachedRowMapping.For(entityType);
        ParameterExpression instance = Expression.Variable(materialize.Type, parameters.InstanceName);
        Expression row = RowOf(mapping, materializationContextExpression);
        return Expression.Block(
            [instance],
            Expression.Assign(instance, materialize),
            Expression.Call(MaterializedMethod, materializationContextExpression, Expression.Constant(mapping), Expression.Convert(instance, typeof(object)), row),
            instance);
    }

    public Func<MaterializationContext, object> GetMaterializer(IEntityType entityType) => inner.GetMaterializer(entityType);

    public Func<MaterializationContext, object> GetMaterializer(IComplexType complexType) => inner.GetMaterializer(complexType);

    public Func<MaterializationContext, object> GetEmptyMaterializer(IEntityType entityType) => inner.GetEmptyMaterializer(entityType);

    public Func<MaterializationContext, object> GetEmptyMaterializer(IComplexType complexType) => inner.GetEmptyMaterializer(complexType);

    // The values of the row in the order of the mapping (CachedRowMapping.Capture), read the way the provider reads
    // the instance's (the provider turns each value-buffer read into a read of the query's result); null for a type
    // the cache cannot keep.
    private static Expression RowOf(CachedRowMapping mapping, Expression materializationContext)
    {
        if (!mapping.CanCache)
        {
            return Expression.Constant(null, typeof(object?[]));
        }

        Expression valueBuffer = Expression.Call(materializationContext, MaterializationContext.GetValueBufferMethod);
        return Expression.NewArrayInit(
            typeof(object),
            mapping.Properties.Select(p => Expression.Convert(
                valueBuffer.CreateValueBufferReadValueExpression(p.ClrType, p.GetIndex(), p), typeof(object))));
    }

    private static void Materialized(MaterializationContext context, CachedRowMapping mapping, object entity, object?[]? row)
    {
        if (entity is ISharedEntity shared)
        {
            ContextReads.Of(context.Context).Materialized(shared, mapping, row);
        }
    }
}
