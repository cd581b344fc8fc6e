using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Metadata;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// A statement of the context that failed because a shared entity's table lacks its version column (a class that
/// gained its <c>Version</c> property before the database gained the column) is reported as
/// <see cref="MissingColumnException"/>, which names the migration to add, instead of the database's bare error.
/// Every other failure passes unchanged.
/// </summary>
internal sealed class SharedEntitiesCommandInterceptor(SharedEntitiesContexts contexts) : DbCommandInterceptor
{
    public override void CommandFailed(DbCommand command, CommandErrorEventData eventData) => Translate(command, eventData);

    public override Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Translate(command, eventData);
        return Task.CompletedTask;
    }

    private void Translate(DbCommand command, CommandErrorEventData eventData)
    {
        if (eventData.Context is not { } context || eventData.Exception is not DbException failure || !contexts.DialectOf(context).IsUndefinedColumn(failure))
        {
            return;
        }

        foreach (IEntityType entityType in context.Model.GetEntityTypes())
        {
            if (SharedEntityConvention.SharedTypeOf(entityType.ClrType) is not { VersionProperty: { } version } shared || shared.ClrType != entityType.ClrType ||
                entityType.GetTableName() is not { } table || entityType.FindProperty(version) is not { } property)
            {
                continue;
            }

            var identifier = StoreObjectIdentifier.Table(table, entityType.GetSchema());
            string column = property.GetColumnName(identifier) ?? version;
            if (failure.Message.Contains(column, StringComparison.Ordinal) && command.CommandText.Contains(table, StringComparison.Ordinal))
            {
                string?[] read = [entityType.FindProperty(shared.KeyProperty)?.GetColumnName(identifier), column,
                    .. shared.Properties.Select(p => entityType.FindProperty(p.Name)?.GetColumnName(identifier))];
                throw new MissingColumnException(shared.Name, table, [.. read.OfType<string>()], version, column, failure);
            }
        }
    }
}
